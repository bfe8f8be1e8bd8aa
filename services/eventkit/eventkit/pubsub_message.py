"""The Pub/Sub message inside a push delivery, read from either envelope Google sends.

- A plain push subscription POSTs ``{"message": {...}, "subscription": "...", "deliveryAttempt": N}``
  (https://cloud.google.com/pubsub/docs/push#receive_push).
- Eventarc wraps the same object as the data of a ``google.cloud.pubsub.topic.v1.messagePublished``
  CloudEvent (``MessagePublishedData``).

Real deliveries carry camelCase and snake_case duplicates (``messageId`` and ``message_id``); both are accepted.
Unlike functions-framework's own conversion, nothing is dropped: subscription, delivery attempt, ordering key,
publish time and attributes are all kept.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from eventkit.errors import MalformedDeliveryError
from eventkit.validation import describe_validation_error


class PubSubMessage(BaseModel):
    """One Pub/Sub message as a consumer sees it (``data`` already base64-decoded)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    message_id: str = Field(validation_alias=AliasChoices("messageId", "message_id"), min_length=1)
    publish_time: datetime | None = Field(default=None, validation_alias=AliasChoices("publishTime", "publish_time"))
    attributes: dict[str, str] = Field(default_factory=dict)
    data: bytes = b""
    ordering_key: str | None = Field(default=None, validation_alias=AliasChoices("orderingKey", "ordering_key"))
    # Envelope fields (outside "message" on the wire), copied in so one value holds the whole delivery.
    subscription: str | None = None
    delivery_attempt: int | None = None

    @field_validator("data", mode="before")
    @classmethod
    def _decode_base64(cls, value: Any) -> bytes:
        if value is None or value == "":
            return b""
        if isinstance(value, bytes):
            return value
        if not isinstance(value, str):
            raise ValueError(f"must be a base64 string, got {type(value).__name__}")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            # Some producers send URL-safe base64; accept it before giving up.
            try:
                return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("is not valid base64") from None

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(f"must be an object of strings, got {type(value).__name__}")
        bad = [k for k, v in value.items() if not isinstance(v, str)]
        if bad:
            raise ValueError(f"values must be strings; not for {', '.join(map(str, bad[:5]))}")
        return dict(value)

    @field_validator("ordering_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: Any) -> Any:
        return value or None


def message_from_envelope(envelope: Any) -> PubSubMessage:
    """Read ``{"message": {...}, "subscription": ..., "deliveryAttempt": ...}`` (push body or Eventarc data)."""
    if not isinstance(envelope, Mapping):
        raise MalformedDeliveryError(
            f"push envelope must be a JSON object with a 'message' member, got {type(envelope).__name__}"
        )
    raw_message = envelope.get("message")
    if not isinstance(raw_message, Mapping):
        raise MalformedDeliveryError(
            'push envelope has no \'message\' object (expected {"message": {"data": ..., "messageId": ...}})'
        )
    attempt = envelope.get("deliveryAttempt", envelope.get("delivery_attempt"))
    fields: dict[str, Any] = dict(raw_message)
    fields["subscription"] = envelope.get("subscription")
    fields["delivery_attempt"] = attempt
    try:
        return PubSubMessage.model_validate(fields)
    except ValidationError as exc:
        raise MalformedDeliveryError("push message " + describe_validation_error(exc, prefix="message")) from None
