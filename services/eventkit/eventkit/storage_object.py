""" "An object was finalized in a bucket", from either form Cloud Storage delivers it in.

- Eventarc: a ``google.cloud.storage.object.v1.finalized`` CloudEvent whose data is ``StorageObjectData``
  (the JSON API object resource: ``bucket``, ``name``, ``generation`` as a string, ``size`` as a string, ...).
- Pub/Sub notifications: attributes ``eventType=OBJECT_FINALIZE``, ``bucketId``, ``objectId``,
  ``objectGeneration``, ``payloadFormat`` (``JSON_API_V1`` with the object resource as data, or ``NONE``)
  (https://cloud.google.com/storage/docs/pubsub-notifications).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from eventkit.errors import MalformedDeliveryError, UnknownEventTypeError
from eventkit.pubsub_message import PubSubMessage
from eventkit.validation import describe_validation_error

FINALIZED_TYPE = "google.cloud.storage.object.v1.finalized"
NOTIFICATION_EVENT_TYPE = "OBJECT_FINALIZE"


class ObjectFinalized(BaseModel):
    """The object a finalize event is about. ``size``/``content_type`` are None when the payload was NONE."""

    # defer_build: the validator is built on the first storage delivery, so only the images service builds it
    # (on its first upload, not at import); a unit test builds it.
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    bucket: str = Field(min_length=1)
    name: str = Field(min_length=1)
    generation: int = Field(ge=0)
    metageneration: int | None = None
    size: int | None = Field(default=None, ge=0)
    content_type: str | None = Field(default=None, validation_alias=AliasChoices("contentType", "content_type"))
    metadata: dict[str, str] = Field(default_factory=dict)
    time_created: datetime | None = Field(default=None, validation_alias=AliasChoices("timeCreated", "time_created"))
    md5_hash: str | None = Field(default=None, validation_alias=AliasChoices("md5Hash", "md5_hash"))
    crc32c: str | None = None

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata(cls, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError("must be an object")
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    @property
    def key(self) -> str:
        """Stable id of this version of the object: ``bucket/name#generation``."""
        return f"{self.bucket}/{self.name}#{self.generation}"


def object_from_storage_data(data: Any) -> ObjectFinalized:
    """Read ``StorageObjectData`` (Eventarc CloudEvent data or a JSON_API_V1 notification payload)."""
    if not isinstance(data, Mapping):
        raise MalformedDeliveryError(f"storage object data must be a JSON object, got {type(data).__name__}")
    try:
        return ObjectFinalized.model_validate(data)
    except ValidationError as exc:
        raise MalformedDeliveryError("storage object " + describe_validation_error(exc, prefix="object")) from None


def is_storage_notification(message: PubSubMessage) -> bool:
    return "eventType" in message.attributes and "bucketId" in message.attributes


def object_from_notification(message: PubSubMessage) -> ObjectFinalized:
    """Read a Cloud Storage Pub/Sub notification; only OBJECT_FINALIZE is an "object finalized" event."""
    attrs = message.attributes
    event_type = attrs.get("eventType")
    if event_type != NOTIFICATION_EVENT_TYPE:
        raise UnknownEventTypeError(
            f"storage notification eventType={event_type!r}: only {NOTIFICATION_EVENT_TYPE} is handled"
        )
    payload_format = attrs.get("payloadFormat", "NONE")
    if payload_format == "JSON_API_V1" and message.data:
        try:
            data = json.loads(message.data)
        except (ValueError, UnicodeDecodeError):
            raise MalformedDeliveryError(
                "storage notification with payloadFormat=JSON_API_V1 has data that is not JSON"
            ) from None
        found = object_from_storage_data(data)
        if found.bucket != attrs.get("bucketId") or found.name != attrs.get("objectId"):
            raise MalformedDeliveryError(
                f"storage notification attributes name {attrs.get('bucketId')}/{attrs.get('objectId')} "
                f"but its data names {found.bucket}/{found.name}"
            )
        return found
    # payloadFormat=NONE: the attributes are all there is.
    return object_from_storage_data(
        {
            "bucket": attrs.get("bucketId"),
            "name": attrs.get("objectId"),
            "generation": attrs.get("objectGeneration"),
        }
    )
