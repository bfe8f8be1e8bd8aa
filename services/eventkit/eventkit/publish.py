"""Publishing domain events to Pub/Sub as CloudEvents (binary Pub/Sub binding), with the current trace."""

from __future__ import annotations

import logging
import threading
from typing import Any

from eventkit.clients import publisher_client
from eventkit.config import Config
from eventkit.errors import RetryableError
from eventkit.events import DomainEvent, EventCatalog, encode_for_pubsub, new_event
from eventkit.structured_log import current_trace

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 30.0


class _InFlight:
    """Publishes under way in this process: ``with`` one; ``others()`` says whether it has company."""

    def __init__(self) -> None:
        self._count, self._lock = 0, threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self._count += 1

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._count -= 1

    def others(self) -> bool:
        with self._lock:
            return self._count > 1


_in_flight = _InFlight()


class Publisher:
    """Publishes validated domain events for one service. ``source`` is the CloudEvent source of its events."""

    def __init__(self, config: Config, catalog: EventCatalog, source: str | None = None) -> None:
        self.config = config
        self.catalog = catalog
        self.source = source or f"//shop/services/{config.service}"

    def event(
        self, event_type: str, data: Any, *, subject: str | None = None, event_id: str | None = None
    ) -> DomainEvent:
        """Build and validate an event (not yet sent), carrying the current trace as a child span."""
        trace = current_trace()
        return new_event(
            self.catalog,
            event_type,
            data,
            source=self.source,
            subject=subject,
            event_id=event_id,
            traceparent=trace.child().traceparent if trace else None,
        )

    def publish(
        self,
        topic: str,
        event: DomainEvent,
        *,
        ordering_key: str | None = None,
        timeout: float = PUBLISH_TIMEOUT_SECONDS,
    ) -> str:
        """Send ``event`` to the logical ``topic`` and wait for the server's message id.

        Waiting is deliberate: the caller (an outbox, a consumer) must know the event is durable before it
        acknowledges or marks anything sent. Transient failures raise :class:`RetryableError`.
        """
        data, attributes = encode_for_pubsub(event)
        return send(self.config.topic_path(topic), data, attributes, ordering_key=ordering_key, timeout=timeout)


def send(
    topic_path: str,
    data: bytes,
    attributes: dict[str, str],
    *,
    ordering_key: str | None = None,
    timeout: float = PUBLISH_TIMEOUT_SECONDS,
    log_line: bool = True,
) -> str:
    """Publish an already-encoded message (the outbox stores messages encoded) and wait for its id.

    While another publish is under way in this process the message joins the Pub/Sub client's batches; alone,
    it is sent at once instead of waiting for company (clients.py).

    ``log_line=False``: the caller reports the message id in its own log line (a consumer's one line per
    delivery), so this one is written at DEBUG only.
    """
    # Imported here, not at module level: google.api_core (and grpc under it) cost ~35 ms of every service's
    # cold start, and the first publish builds the Pub/Sub client, which imports them anyway.
    from google.api_core import exceptions as api_exceptions

    with _in_flight:
        client = publisher_client(batching=_in_flight.others())
        try:
            future = client.publish(topic_path, data, ordering_key=ordering_key or "", **attributes)
            message_id = future.result(timeout=timeout)
        except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError, TimeoutError) as exc:
            if ordering_key:
                # After a failure the client pauses that ordering key until it is resumed.
                client.resume_publish(topic_path, ordering_key)
            what = f"{attributes.get('ce-type', 'message')} {attributes.get('ce-id', '')}".strip()
            raise RetryableError(f"publishing {what} to {topic_path} failed: {exc!r}") from exc
    log.log(
        logging.INFO if log_line else logging.DEBUG,
        "published",
        extra={
            "fields": {
                "event_id": attributes.get("ce-id"),
                "event_type": attributes.get("ce-type"),
                "topic": topic_path,
                "message_id": message_id,
            }
        },
    )
    return str(message_id)
