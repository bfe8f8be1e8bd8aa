"""Publishing domain events to Pub/Sub as CloudEvents (binary Pub/Sub binding), with the current trace."""

from __future__ import annotations

import functools
import logging
from typing import Any

from eventkit.clients import publisher_client
from eventkit.config import Config
from eventkit.errors import RetryableError
from eventkit.events import DomainEvent, EventCatalog, encode_for_pubsub, new_event
from eventkit.in_flight import InFlight
from eventkit.structured_log import current_trace

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 30.0
_publishes = InFlight()  # send() calls under way in this process


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

    While another publish is under way in this process the message joins the Pub/Sub client's batches (fewer,
    larger RPCs under load); alone, it is sent at once in one Publish call instead of waiting for company.

    ``log_line=False``: the caller reports the message id in its own log line (a consumer's one line per
    delivery), so this one is written at DEBUG only.
    """
    # Imported here, not at module level: google.api_core (and grpc under it) cost ~35 ms of every service's
    # cold start, and the first publish builds the Pub/Sub client, which imports them anyway.
    from google.api_core import exceptions as api_exceptions

    with _publishes:
        client = publisher_client()
        publish = _publish_batched if _publishes.others() else _publish_now
        try:
            message_id = publish(client, topic_path, data, attributes, ordering_key or "", timeout)
        except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError, TimeoutError) as exc:
            if ordering_key:
                # After a failure the client pauses that ordering key (batched path) until it is resumed.
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


def _publish_batched(
    client: Any, topic_path: str, data: bytes, attributes: dict[str, str], ordering_key: str, timeout: float
) -> str:
    """Through the client's batches (clients.py: up to 10 ms for company), waiting for this message's id."""
    return str(client.publish(topic_path, data, ordering_key=ordering_key, **attributes).result(timeout=timeout))


def _publish_now(
    client: Any, topic_path: str, data: bytes, attributes: dict[str, str], ordering_key: str, timeout: float
) -> str:
    """One Publish RPC from the calling thread: what the batching client would send for a lone message, without
    its batch object, commit thread and future (a thread started per message)."""
    from google.pubsub_v1 import PubsubMessage
    from google.pubsub_v1.services.publisher import PublisherClient as GapicPublisher

    message = PubsubMessage(data=data, attributes=attributes, ordering_key=ordering_key)
    # The generated client's method, on the process's client (a subclass): its channel, credentials, emulator.
    response = GapicPublisher.publish(
        client, topic=topic_path, messages=[message], retry=_retry_within(timeout), timeout=timeout
    )
    return str(response.message_ids[0])


@functools.cache
def _retry_within(timeout: float) -> Any:
    """The generated Publish method's own retry policy (google/pubsub_v1/services/publisher/transports/base.py),
    ending after ``timeout`` instead of its 600 s: the caller must hear within ``timeout`` whether it is durable."""
    from google.api_core import exceptions as errors
    from google.api_core import retry as retries

    transient = (
        errors.Aborted,
        errors.Cancelled,
        errors.DeadlineExceeded,
        errors.InternalServerError,
        errors.ResourceExhausted,
        errors.ServiceUnavailable,
        errors.Unknown,
    )
    return retries.Retry(
        initial=0.1, maximum=60.0, multiplier=4, predicate=retries.if_exception_type(*transient), timeout=timeout
    )
