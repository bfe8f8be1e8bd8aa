"""Replaying a failure record: its message, republished to the topic it was first published to.

Data, attributes (``ce-id`` included) and ordering key are the original ones, so every consumer's idempotency
ledger still recognises the event: a consumer that already processed it answers "duplicate", one that failed
on it processes it now, once. The ``CloudPubSubDeadLetterSource*`` attributes Pub/Sub added are not sent
(they were never part of the message). Only then is the record marked ``replayed``.

``once=True`` (the console) also makes the *publish* happen once: the record is claimed ``new`` → ``replayed``
in a transaction first, so two clicks or two operators send one message; the claim is undone if the publish
fails. The CLI's ``replay ID`` may republish a record on purpose (``once=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventkit.failure_records import NotNew, Records
from eventkit.failures import STATUS_REPLAYED, stored_payload
from eventkit.publish import send


class ReplayError(Exception):
    """This record cannot be replayed; the message says why and what to do."""


class AlreadyTaken(ReplayError):
    """``once=True``: the record was no longer ``new`` (replayed or discarded by someone else)."""


@dataclass(frozen=True)
class Replayed:
    record_id: str
    topic: str
    message_id: str


def replay(
    records: Records, project: str, record: dict[str, Any], topic: str | None = None, *, once: bool = False
) -> Replayed:
    if not record.get("replayable"):
        why = "its payload was truncated" if record.get("payload_truncated") else "it is not a Pub/Sub message"
        raise ReplayError(f"record {record['id']} cannot be replayed: {why}")
    topic_path = _path(project, "topics", topic or record.get("topic") or _topic_of(project, record))
    data = stored_payload(record)
    attributes = {str(k): str(v) for k, v in (record.get("attributes") or {}).items()}
    if once:
        try:
            records.claim(record["id"], STATUS_REPLAYED)
        except NotNew as exc:
            raise AlreadyTaken(f"{exc}; not replayed again") from None
    try:
        message_id = send(topic_path, data, attributes, ordering_key=record.get("ordering_key"))
    except Exception:
        if once:
            records.release(record["id"])
        raise
    records.mark_replayed(record["id"], message_id)
    return Replayed(record_id=record["id"], topic=topic_path, message_id=message_id)


def _path(project: str, kind: str, name: str) -> str:
    return name if name.startswith("projects/") else f"projects/{project}/{kind}/{name}"


def _topic_of(project: str, record: dict[str, Any]) -> str:
    subscription = record.get("subscription")
    if not subscription:
        raise ReplayError(f"record {record['id']} names no subscription; name the topic it goes to")
    from google.api_core import exceptions
    from google.cloud import pubsub_v1

    path = _path(project, "subscriptions", subscription)
    try:
        found = pubsub_v1.SubscriberClient().get_subscription(request={"subscription": path}, timeout=30)
    except exceptions.GoogleAPICallError as exc:
        raise ReplayError(
            f"cannot find the topic of {path} ({exc.message or exc}); name the topic it goes to"
        ) from None
    return str(found.topic)
