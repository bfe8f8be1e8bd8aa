"""Reading one HTTP request into a typed :class:`Delivery`, whatever form it arrived in.

| arrives as | becomes |
| --- | --- |
| raw Pub/Sub push body ``{"message": ..., "subscription": ...}`` | ``message`` + its ``event`` or ``object`` |
| Eventarc ``google.cloud.pubsub.topic.v1.messagePublished`` CloudEvent (binary or structured) | the same |
| Eventarc ``google.cloud.storage.object.v1.finalized`` CloudEvent (binary or structured) | ``object`` |
| a domain CloudEvent sent straight over HTTP (binary or structured) | ``event`` |

Inside a Pub/Sub message, a Cloud Storage notification (``eventType``/``bucketId`` attributes) becomes ``object``;
anything else must be a domain CloudEvent in the Pub/Sub binding. Anything unreadable raises a
:class:`~eventkit.errors.PermanentError` naming what was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http

from eventkit.errors import MalformedDeliveryError, PayloadTooLargeError
from eventkit.events import STRUCTURED_CONTENT_TYPE, DomainEvent, EventCatalog, decode_pubsub_attributes, json_data
from eventkit.events import decode_cloudevent as decode_domain_cloudevent
from eventkit.pubsub_message import PubSubMessage, message_from_envelope
from eventkit.storage_object import (
    FINALIZED_TYPE,
    ObjectFinalized,
    is_storage_notification,
    object_from_notification,
    object_from_storage_data,
)
from eventkit.trace import TraceContext, parse_traceparent, trace_from_attributes, trace_from_headers

MESSAGE_PUBLISHED_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"


class Transport(StrEnum):
    PUBSUB_PUSH = "pubsub-push"
    EVENTARC_PUBSUB = "eventarc-pubsub"
    EVENTARC_STORAGE = "eventarc-storage"
    CLOUDEVENT_HTTP = "cloudevent-http"


@dataclass(frozen=True)
class Delivery:
    """One delivery, read. Exactly one of ``event`` and ``object`` is set."""

    transport: Transport
    event: DomainEvent | None = None
    object: ObjectFinalized | None = None
    message: PubSubMessage | None = None
    trace: TraceContext | None = None
    # The Eventarc envelope's own id (the message id for Pub/Sub), when there was an envelope.
    envelope_id: str | None = None

    @property
    def key(self) -> str:
        """Idempotency key: the domain event id, or ``bucket/name#generation`` for an object."""
        if self.event is not None:
            return self.event.id
        assert self.object is not None
        return self.object.key

    @property
    def kind(self) -> str:
        """What the consumer dispatches on: the domain event type, or the storage finalize type."""
        return self.event.type if self.event is not None else FINALIZED_TYPE


def read_delivery(
    headers: Mapping[str, str],
    body: bytes,
    catalog: EventCatalog,
    *,
    max_bytes: int | None = None,
) -> Delivery:
    """Read a request's headers and body into a :class:`Delivery` (or raise a PermanentError)."""
    if max_bytes is not None and len(body) > max_bytes:
        raise PayloadTooLargeError(f"request body is {len(body)} bytes; the limit is {max_bytes}")
    lowered = {k.lower(): v for k, v in headers.items()}
    http_trace = trace_from_headers(lowered)

    if "ce-specversion" in lowered or lowered.get("content-type", "").startswith(STRUCTURED_CONTENT_TYPE):
        return _read_cloudevent(lowered, body, catalog, http_trace)

    envelope = _json_body(body)
    if isinstance(envelope, Mapping) and "message" in envelope:
        message = message_from_envelope(envelope)
        return _read_message(message, Transport.PUBSUB_PUSH, catalog, http_trace, envelope_id=None)
    if isinstance(envelope, Mapping) and "specversion" in envelope:
        # A structured CloudEvent sent with a plain JSON content type: read it as one.
        return _read_cloudevent({**lowered, "content-type": STRUCTURED_CONTENT_TYPE}, body, catalog, http_trace)
    raise MalformedDeliveryError(
        'request is neither a Pub/Sub push body ({"message": ..., "subscription": ...}) nor a CloudEvent '
        "(ce-* headers or content-type application/cloudevents+json)"
    )


def _read_cloudevent(
    headers: dict[str, str], body: bytes, catalog: EventCatalog, http_trace: TraceContext | None
) -> Delivery:
    event_type = _peek_type(headers, body)
    if event_type not in (MESSAGE_PUBLISHED_TYPE, FINALIZED_TYPE):
        event = decode_domain_cloudevent(catalog, headers, body)
        return Delivery(
            Transport.CLOUDEVENT_HTTP, event=event, trace=parse_traceparent(event.traceparent) or http_trace
        )
    outer = _parse_outer(headers, body)
    data = outer.get_data()
    if event_type == FINALIZED_TYPE:
        return Delivery(
            Transport.EVENTARC_STORAGE,
            object=object_from_storage_data(data),
            trace=http_trace,
            envelope_id=outer["id"],
        )
    message = message_from_envelope(data)
    return _read_message(message, Transport.EVENTARC_PUBSUB, catalog, http_trace, envelope_id=outer["id"])


def _read_message(
    message: PubSubMessage,
    transport: Transport,
    catalog: EventCatalog,
    http_trace: TraceContext | None,
    envelope_id: str | None,
) -> Delivery:
    if is_storage_notification(message):
        return Delivery(
            transport,
            object=object_from_notification(message),
            message=message,
            trace=trace_from_attributes(message.attributes) or http_trace,
            envelope_id=envelope_id,
        )
    event = decode_pubsub_attributes(catalog, message.attributes, message.data)
    # The producer's trace wins: it ties this consumer's logs to the request that caused the event.
    trace = parse_traceparent(event.traceparent) or trace_from_attributes(message.attributes) or http_trace
    return Delivery(transport, event=event, message=message, trace=trace, envelope_id=envelope_id)


def _peek_type(headers: Mapping[str, str], body: bytes) -> str | None:
    if "ce-type" in headers:
        return headers["ce-type"]
    parsed = _json_body(body)
    if not isinstance(parsed, Mapping):
        raise MalformedDeliveryError("structured CloudEvent body must be a JSON object")
    value = parsed.get("type")
    return value if isinstance(value, str) else None


def _parse_outer(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    try:
        return from_http(dict(headers), body, data_unmarshaller=json_data)
    except (GenericException, ValueError, TypeError, RecursionError) as exc:
        raise MalformedDeliveryError(
            f"not a valid CloudEvent: {(str(exc).splitlines() or [type(exc).__name__])[0][:300]}"
        ) from None


def _json_body(body: bytes) -> Any:
    if not body:
        raise MalformedDeliveryError("request body is empty; expected a Pub/Sub push body or a CloudEvent")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedDeliveryError(f"request body is not JSON: {exc}") from None
