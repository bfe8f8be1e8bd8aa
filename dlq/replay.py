"""Replaying a record: its message, republished to the topic it was first published to.

Data, attributes (``ce-id`` included) and ordering key are the original ones, so every consumer's idempotency
ledger still recognises the event: a consumer that already processed it answers "duplicate", one that failed
on it processes it now, once. The ``CloudPubSubDeadLetterSource*`` attributes Pub/Sub added are not sent
(they were never part of the message). Only then is the record marked ``replayed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlq.records import Records
from dlq.target import Target
from eventkit.failures import stored_payload
from eventkit.publish import send


class ReplayError(Exception):
    """This record cannot be replayed; the message says why and what to do."""


@dataclass(frozen=True)
class Replayed:
    record_id: str
    topic: str
    message_id: str


def replay(records: Records, target: Target, record: dict[str, Any], topic: str | None = None) -> Replayed:
    if not record.get("replayable"):
        why = "its payload was truncated" if record.get("payload_truncated") else "it is not a Pub/Sub message"
        raise ReplayError(f"record {record['id']} cannot be replayed: {why}; see `dlq show {record['id']}`")
    topic_path = target.topic_path(topic or record.get("topic") or _topic_of(target, record))
    data = stored_payload(record)
    attributes = {str(k): str(v) for k, v in (record.get("attributes") or {}).items()}
    message_id = send(topic_path, data, attributes, ordering_key=record.get("ordering_key"))
    records.mark_replayed(record["id"], message_id)
    return Replayed(record_id=record["id"], topic=topic_path, message_id=message_id)


def _topic_of(target: Target, record: dict[str, Any]) -> str:
    subscription = record.get("subscription")
    if not subscription:
        raise ReplayError(f"record {record['id']} names no subscription; pass --topic T to say where it goes")
    from google.api_core import exceptions
    from google.cloud import pubsub_v1

    path = target.subscription_path(subscription)
    try:
        found = pubsub_v1.SubscriberClient().get_subscription(request={"subscription": path}, timeout=30)
    except exceptions.GoogleAPICallError as exc:
        raise ReplayError(
            f"cannot find the topic of {path} ({exc.message or exc}); pass --topic T to say where it goes"
        ) from None
    return str(found.topic)
