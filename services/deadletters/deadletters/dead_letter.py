"""What a dead-lettered message is: read from the push body of a dead-letter topic's subscription.

Pub/Sub publishes a message it gave up on to the subscription's dead-letter topic with its data and attributes
unchanged, plus ``CloudPubSubDeadLetterSource*`` attributes naming where it came from
(https://cloud.google.com/pubsub/docs/handling-failures). Pure: no I/O, so every rule is unit-tested.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventkit import PubSubMessage, message_from_envelope
from eventkit.errors import MalformedDeliveryError
from eventkit.failures import (
    KIND_DEAD_LETTER,
    MAX_STORED_BYTES,
    STATUS_NEW,
    payload_fields,
    storable_attributes,
)

SOURCE_PREFIX = "CloudPubSubDeadLetterSource"
SOURCE_SUBSCRIPTION = "CloudPubSubDeadLetterSourceSubscription"
SOURCE_PROJECT = "CloudPubSubDeadLetterSourceSubscriptionProject"
SOURCE_DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
SOURCE_PUBLISH_TIME = "CloudPubSubDeadLetterSourceTopicPublishTime"
REASON = "max_delivery_attempts"
# Redeliveries of the same dead-letter message are recognised by its message id; keep the last few.
KEPT_MESSAGE_IDS = 20


@dataclass(frozen=True)
class DeadLetter:
    message: PubSubMessage
    source_subscription: str | None  # full path; None if the message was published to the topic by hand
    delivery_count: int | None
    source_publish_time: datetime | None
    attributes: Mapping[str, str]  # the original attributes, as they were published
    source_attributes: Mapping[str, str]  # the CloudPubSubDeadLetterSource* ones

    @property
    def event_id(self) -> str | None:
        return self.attributes.get("ce-id")

    @property
    def record_id(self) -> str:
        """One record per (source subscription, event): a redelivery, or a re-dead-lettered replay, finds it."""
        identity = self.event_id or self.message.message_id
        return hashlib.sha256(f"{KIND_DEAD_LETTER}\0{self.source_subscription}\0{identity}".encode()).hexdigest()[:40]

    def error(self) -> str:
        attempts = f"{self.delivery_count} delivery attempts" if self.delivery_count else "its delivery attempts"
        where = self.source_subscription or "(no source subscription attribute)"
        return f"Pub/Sub dead-lettered the message after {attempts} on {where}"

    def to_document(self, now: datetime, topic: str | None) -> dict[str, Any]:
        """A new record in the shared schema of eventkit.failures."""
        data = self.message.data
        return {
            "kind": KIND_DEAD_LETTER,
            "consumer": None,
            "reason": REASON,
            "error": self.error(),
            "transport": "pubsub-push",
            "subscription": self.source_subscription,
            "topic": topic,
            "message_id": self.message.message_id,
            "message_ids": [self.message.message_id],
            "dead_letter_subscription": self.message.subscription,
            "attributes": storable_attributes(self.attributes),
            "source_attributes": storable_attributes(self.source_attributes),
            "ordering_key": self.message.ordering_key,
            "event_id": self.event_id,
            "event_type": self.attributes.get("ce-type"),
            "delivery_attempt": self.delivery_count,
            "publish_time": self.source_publish_time or self.message.publish_time,
            **payload_fields(data),
            "replayable": len(data) <= MAX_STORED_BYTES,
            "headers": {},
            "status": STATUS_NEW,
            "count": 1,
            "first_seen": now,
            "last_seen": now,
        }


def read_dead_letter(body: bytes, default_project: str) -> DeadLetter:
    """The push body of a dead-letter subscription, read; MalformedDeliveryError names what is wrong."""
    try:
        envelope = json.loads(body) if body else None
    except (ValueError, RecursionError) as exc:
        raise MalformedDeliveryError(f"request body is not JSON: {exc}") from None
    message = message_from_envelope(envelope)
    source = {k: v for k, v in message.attributes.items() if k.startswith(SOURCE_PREFIX)}
    original = {k: v for k, v in message.attributes.items() if not k.startswith(SOURCE_PREFIX)}
    return DeadLetter(
        message=message,
        source_subscription=_subscription_path(source, default_project),
        delivery_count=_positive_int(source.get(SOURCE_DELIVERY_COUNT)),
        source_publish_time=_timestamp(source.get(SOURCE_PUBLISH_TIME)),
        attributes=original,
        source_attributes=source,
    )


def _subscription_path(source: Mapping[str, str], default_project: str) -> str | None:
    name = source.get(SOURCE_SUBSCRIPTION)
    if not name:
        return None
    if name.startswith("projects/"):
        return name
    return f"projects/{source.get(SOURCE_PROJECT) or default_project}/subscriptions/{name}"


def _positive_int(value: str | None) -> int | None:
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number > 0 else None


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
