"""Domain events: CloudEvents 1.0 whose ``type`` names a payload model in the catalog.

A domain event crosses Pub/Sub in the CloudEvents Pub/Sub binding: binary mode (``ce-id``, ``ce-type``,
``ce-source``, ``ce-specversion``, ``ce-time`` ... attributes, ``content-type`` attribute, JSON data) or
structured mode (``content-type: application/cloudevents+json`` attribute, the whole event as JSON data).
Those attribute names are exactly the CloudEvents HTTP binary-mode header names, so both directions go through
the cloudevents SDK's HTTP conversion.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudevents.conversion import to_binary
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http
from pydantic import BaseModel, ValidationError

from eventkit.errors import InvalidPayloadError, MalformedDeliveryError, UnknownEventTypeError
from eventkit.validation import describe_validation_error

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
JSON_CONTENT_TYPE = "application/json"
# Core attributes that are not extensions.
_CORE = {"id", "source", "type", "specversion", "time", "subject", "datacontenttype", "dataschema", "data"}


class EventCatalog:
    """Which CloudEvent types exist and what their data must look like."""

    def __init__(self) -> None:
        self._models: dict[str, type[BaseModel]] = {}

    def register(self, event_type: str, model: type[BaseModel]) -> None:
        if event_type in self._models and self._models[event_type] is not model:
            raise ValueError(f"event type {event_type!r} is already registered")
        self._models[event_type] = model

    def model_for(self, event_type: str) -> type[BaseModel]:
        try:
            return self._models[event_type]
        except KeyError:
            known = ", ".join(sorted(self._models)) or "none"
            raise UnknownEventTypeError(f"unknown event type {event_type!r} (known: {known})") from None

    def validate(self, event_type: str, data: Any) -> BaseModel:
        """Data (a dict, a model, or JSON text) -> the type's model; errors name every bad field."""
        model = self.model_for(event_type)
        if isinstance(data, model):
            return data
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        try:
            if isinstance(data, str | bytes):
                return model.model_validate_json(data)
            return model.model_validate(data)
        except ValidationError as exc:
            raise InvalidPayloadError(f"{event_type} data: {describe_validation_error(exc)}") from None

    @property
    def types(self) -> list[str]:
        return sorted(self._models)


@dataclass(frozen=True)
class DomainEvent:
    """A validated domain CloudEvent. ``id`` is the idempotency key: stable across redelivery and replay."""

    id: str
    type: str
    source: str
    data: BaseModel
    time: datetime | None = None
    subject: str | None = None
    traceparent: str | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)

    def data_json(self) -> dict[str, Any]:
        return self.data.model_dump(mode="json", exclude_none=True)

    @property
    def trace_id(self) -> str | None:
        """The trace this event travels in (its ``traceparent``'s), if it carries one."""
        from eventkit.trace import parse_traceparent

        trace = parse_traceparent(self.traceparent)
        return trace.trace_id if trace else None


def new_event(
    catalog: EventCatalog,
    event_type: str,
    data: Any,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    traceparent: str | None = None,
    time: datetime | None = None,
) -> DomainEvent:
    """Build and validate an event to publish. Pass ``event_id`` when re-publishing so consumers dedupe it."""
    return DomainEvent(
        id=event_id or str(uuid.uuid4()),
        type=event_type,
        source=source,
        data=catalog.validate(event_type, data),
        time=time or datetime.now(UTC),
        subject=subject,
        traceparent=traceparent,
    )


def encode_for_pubsub(event: DomainEvent) -> tuple[bytes, dict[str, str]]:
    """A domain event -> (Pub/Sub data, attributes) in the CloudEvents Pub/Sub binary binding."""
    attributes: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "specversion": "1.0",
        "datacontenttype": JSON_CONTENT_TYPE,
    }
    if event.time is not None:
        attributes["time"] = event.time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if event.subject:
        attributes["subject"] = event.subject
    if event.traceparent:
        attributes["traceparent"] = event.traceparent
    attributes.update(event.extensions)
    cloud_event = CloudEvent(attributes, event.data_json())
    headers, body = to_binary(cloud_event)
    return body, {name.lower(): str(value) for name, value in headers.items()}


_BINARY_REQUIRED = ("id", "source", "type")  # besides specversion, whose presence marks binary mode


def decode_cloudevent(catalog: EventCatalog, headers: Mapping[str, str], body: bytes) -> DomainEvent:
    """An HTTP request (binary or structured CloudEvent) -> a validated domain event."""
    lowered = {name.lower() for name in headers}
    if "ce-specversion" in lowered:
        # Binary mode: the SDK reports any missing required attribute as "Failed to find specversion".
        missing = [f"ce-{name}" for name in _BINARY_REQUIRED if f"ce-{name}" not in lowered]
        if missing:
            raise MalformedDeliveryError(
                f"not a valid CloudEvent: required attribute(s) {', '.join(map(repr, missing))} missing "
                "(binary mode: each attribute is a ce-* header or Pub/Sub attribute)"
            )
    try:
        cloud_event = from_http(dict(headers), body, data_unmarshaller=json_data)
    except (GenericException, ValueError, TypeError, RecursionError) as exc:
        if isinstance(exc.__context__, MalformedDeliveryError):  # json_data's own words, which the SDK wraps
            raise exc.__context__ from None
        raise MalformedDeliveryError(f"not a valid CloudEvent: {_first_line(exc)}") from None
    return _to_domain_event(catalog, cloud_event, time_declared=_declares_time(headers, body))


def decode_pubsub_attributes(catalog: EventCatalog, attributes: Mapping[str, str], data: bytes) -> DomainEvent:
    """A Pub/Sub message's attributes and data -> a validated domain event (binary or structured binding)."""
    lowered = {name.lower(): value for name, value in attributes.items()}
    if "ce-specversion" not in lowered and not lowered.get("content-type", "").startswith(STRUCTURED_CONTENT_TYPE):
        raise MalformedDeliveryError(
            "message is not a CloudEvent: no ce-specversion attribute and no "
            f"content-type={STRUCTURED_CONTENT_TYPE} attribute"
        )
    return decode_cloudevent(catalog, lowered, data)


_STRING_ATTRIBUTES = ("specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema")


def _declares_time(headers: Mapping[str, str], body: bytes) -> bool:
    lowered = {k.lower(): v for k, v in headers.items()}
    if "ce-specversion" in lowered:
        return "ce-time" in lowered
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, dict) and parsed.get("time") is not None


def _to_domain_event(catalog: EventCatalog, cloud_event: CloudEvent, time_declared: bool = True) -> DomainEvent:
    attrs = cloud_event.get_attributes()
    not_strings = [name for name in _STRING_ATTRIBUTES if name in attrs and not isinstance(attrs[name], str)]
    if not_strings:
        raise MalformedDeliveryError(f"CloudEvent attribute(s) {', '.join(map(repr, not_strings))} must be strings")
    traceparent = attrs.get("traceparent")
    if traceparent is not None and not isinstance(traceparent, str):
        traceparent = None  # a malformed trace extension is not worth refusing the event for
    for required in ("id", "type", "source"):
        if not attrs.get(required):
            raise MalformedDeliveryError(f"CloudEvent attribute {required!r} is missing or empty")
    content_type = attrs.get("datacontenttype")
    if content_type and "json" not in content_type.lower():
        raise InvalidPayloadError(
            f"{attrs['type']} data has content type {content_type!r}; expected {JSON_CONTENT_TYPE}"
        )
    data = catalog.validate(attrs["type"], cloud_event.get_data())
    extensions = {k: v for k, v in attrs.items() if k not in _CORE and k != "traceparent"}
    return DomainEvent(
        id=attrs["id"],
        type=attrs["type"],
        source=attrs["source"],
        data=data,
        time=_parse_time(attrs.get("time")) if time_declared else None,
        subject=attrs.get("subject"),
        traceparent=traceparent,
        extensions=extensions,
    )


def json_data(raw: str | bytes) -> Any:
    """CloudEvent data as JSON (None when empty); anything else is a malformed delivery."""
    if raw in ("", b""):
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise MalformedDeliveryError(f"CloudEvent data is not JSON: {exc}") from None


def _parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedDeliveryError(f"CloudEvent attribute 'time' is not RFC 3339: {value!r}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
