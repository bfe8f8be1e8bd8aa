"""Publishing domain events to Pub/Sub as CloudEvents (binary Pub/Sub binding), with the current trace."""

from __future__ import annotations

import functools
import logging
from typing import Any

from eventkit.clients import publisher_client
from eventkit.config import Config
from eventkit.errors import RetryableError
from eventkit.events import DomainEvent, EventCatalog, encode_for_pubsub, new_event
from eventkit.publish_groups import PublishGroups
from eventkit.structured_log import current_trace

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 30.0


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

    Sent at once when no Publish call to its topic (and ordering key) is under way in this process; otherwise it
    goes in the next call, together with the others that arrived meanwhile (publish_groups.py).

    ``log_line=False``: the caller reports the message id in its own log line (a consumer's one line per
    delivery), so this one is written at DEBUG only.
    """
    # Imported here, not at module level: google.api_core (and grpc under it) are a large share of a cold start,
    # and the first publish builds the Pub/Sub client, which imports them anyway.
    from google.api_core import exceptions as api_exceptions
    from google.pubsub_v1 import PubsubMessage

    key = ordering_key or ""
    message = PubsubMessage(data=data, attributes=attributes, ordering_key=key)
    size = len(data) + len(key) + sum(len(name) + len(value) for name, value in attributes.items())
    try:
        message_id = _groups().publish(topic_path, key, message, size, timeout)
    except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError, TimeoutError) as exc:
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
    return message_id


@functools.cache
def _groups() -> PublishGroups:
    return PublishGroups(publish_call)


def publish_call(topic_path: str, messages: list[Any], timeout: float) -> list[str]:
    """One Publish RPC from the calling thread, on the process's client (its channel, credentials, emulator):
    the generated method, with its own retry policy ending within ``timeout``."""
    from google.pubsub_v1.services.publisher import PublisherClient as GapicPublisher

    response = GapicPublisher.publish(
        publisher_client(), topic=topic_path, messages=messages, retry=_retry().with_timeout(timeout), timeout=timeout
    )
    return list(response.message_ids)


@functools.cache
def _retry() -> Any:
    """The generated Publish method's own retry policy (google/pubsub_v1/services/publisher/transports/base.py);
    each call ends it after its caller's timeout instead of 600 s: the caller must hear whether it is durable."""
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
    return retries.Retry(initial=0.1, maximum=60.0, multiplier=4, predicate=retries.if_exception_type(*transient))
