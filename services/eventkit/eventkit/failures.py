"""Failure records: where an operator finds every message the system could not process (collection ``failures``).

Two kinds of record share this one collection and one schema, so ``python -m dlq list`` shows one list:

- ``permanent_failure``: a consumer acknowledged a poison message (malformed, unknown type, invalid payload) and
  wrote this record itself (:class:`FailureRecorder`), so the message does not loop for days and is not lost.
  Repeated deliveries of the same poison message update one record (``count``) instead of adding new ones.
- ``dead_letter``: Pub/Sub gave up after ``max_delivery_attempts`` and published the message to the
  subscription's dead-letter topic; the ``deadletters`` service records it (services/deadletters).

Fields (both kinds): ``kind``, ``status`` (``new`` → ``replayed`` | ``discarded``), ``consumer`` (None for dead
letters), ``reason``, ``error``, ``transport``, ``subscription`` (full path of the subscription the message
failed on), ``topic`` (its topic, when known), ``message_id``, ``attributes`` (the original ones),
``ordering_key``, ``event_id`` / ``event_type`` (``ce-id`` / ``ce-type``), ``delivery_attempt`` (for dead
letters: ``CloudPubSubDeadLetterSourceDeliveryCount``), ``publish_time``, ``payload`` (``{"text"}`` or
``{"base64"}``), ``payload_bytes``, ``payload_truncated``, ``replayable`` (payload is the whole original message
data), ``count``, ``first_seen``, ``last_seen``; after a replay ``replayed_at``, ``replay_message_ids``,
``replays``; after a discard ``discarded_at``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FAILURES_COLLECTION = "failures"
KIND_PERMANENT_FAILURE = "permanent_failure"
KIND_DEAD_LETTER = "dead_letter"
STATUS_NEW, STATUS_REPLAYED, STATUS_DISCARDED = "new", "replayed", "discarded"
STATUSES = (STATUS_NEW, STATUS_REPLAYED, STATUS_DISCARDED)
# Firestore documents are at most 1 MiB; keep what an operator needs to replay or diagnose, not more.
MAX_STORED_BYTES = 256 * 1024


@dataclass(frozen=True)
class FailedDelivery:
    """What is known of a delivery that failed permanently; built before or after parsing succeeded."""

    consumer: str
    reason: str
    error: str
    body: bytes
    headers: Mapping[str, str]
    transport: str | None = None
    subscription: str | None = None
    message_id: str | None = None
    attributes: Mapping[str, str] | None = None
    data: bytes | None = None
    event_id: str | None = None
    event_type: str | None = None
    delivery_attempt: int | None = None
    ordering_key: str | None = None
    publish_time: datetime | None = None

    @classmethod
    def unparsed(
        cls, consumer: str, reason: str, error: str, body: bytes, headers: Mapping[str, str]
    ) -> FailedDelivery:
        """A delivery that could not be read: keep whatever envelope fields can still be found in the body."""
        envelope = _json_object(body)
        message = envelope.get("message") if isinstance(envelope.get("message"), dict) else {}
        message_id = message.get("messageId") or message.get("message_id")
        attributes = message.get("attributes")
        return cls(
            consumer=consumer,
            reason=reason,
            error=error,
            body=body,
            headers=headers,
            subscription=envelope.get("subscription") if isinstance(envelope.get("subscription"), str) else None,
            message_id=message_id if isinstance(message_id, str) else None,
            attributes=attributes if isinstance(attributes, dict) else None,
        )

    @property
    def record_id(self) -> str:
        """Same poison message, same record: keyed by consumer and message/event id, else the body's hash."""
        identity = self.message_id or self.event_id or hashlib.sha256(self.body).hexdigest()
        return hashlib.sha256(f"{self.consumer}\0{identity}".encode()).hexdigest()[:40]

    def to_document(self, now: datetime) -> dict[str, Any]:
        payload = self.data if self.data is not None else self.body
        return {
            "kind": KIND_PERMANENT_FAILURE,
            "consumer": self.consumer,
            "reason": self.reason,
            "error": self.error[:2000],
            "transport": self.transport,
            "subscription": self.subscription,
            "topic": None,  # a push body does not name it; `dlq replay` looks it up from the subscription
            "message_id": self.message_id,
            "attributes": storable_attributes(self.attributes),
            "ordering_key": self.ordering_key,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "delivery_attempt": self.delivery_attempt,
            "publish_time": self.publish_time,
            **payload_fields(payload),
            # Only a Pub/Sub message's own data can be republished; an unreadable body is kept for diagnosis.
            "replayable": self.data is not None and len(self.data) <= MAX_STORED_BYTES,
            "headers": {k.lower(): v for k, v in self.headers.items() if _keep_header(k)},
            "status": STATUS_NEW,
            "last_seen": now,
        }


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _keep_header(name: str) -> bool:
    lowered = name.lower()
    # Never store credentials an operator could leak by reading the record.
    return lowered not in {"authorization", "cookie", "x-goog-iap-jwt-assertion"}


def storable_attributes(attributes: Mapping[Any, Any] | None) -> dict[str, str]:
    """Attributes as a Firestore map: a forged push body may carry keys Firestore refuses (empty, not strings),
    and a record that cannot be written would turn a poison message into an endless retry. Pub/Sub itself
    never sends such keys, so nothing a replay needs is dropped."""
    return {key: str(value) for key, value in (attributes or {}).items() if isinstance(key, str) and key}


def payload_fields(payload: bytes) -> dict[str, Any]:
    """``payload``, ``payload_bytes`` and ``payload_truncated`` of a record."""
    return {
        "payload": _stored(payload),
        "payload_bytes": len(payload),
        "payload_truncated": len(payload) > MAX_STORED_BYTES,
    }


def stored_payload(document: Mapping[str, Any]) -> bytes:
    """The payload bytes a record holds (the inverse of :func:`payload_fields`)."""
    payload = document.get("payload") or {}
    if "base64" in payload:
        return base64.b64decode(payload["base64"])
    return str(payload.get("text", "")).encode("utf-8")


def _stored(payload: bytes) -> dict[str, str]:
    kept = payload[:MAX_STORED_BYTES]
    try:
        return {"text": kept.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(kept).decode("ascii")}


class FailureRecorder:
    def __init__(self, client: Any, collection: str = FAILURES_COLLECTION) -> None:
        self.client = client
        self.collection = collection

    def record(self, failure: FailedDelivery) -> str:
        """Write the record, or count one more delivery of the same poison message on it (``new`` again)."""
        from eventkit import waiting_counts  # here, not at the top: it imports this module's statuses
        from eventkit.transactions import run_read_write

        ref = self.client.collection(self.collection).document(failure.record_id)

        def body(transaction: Any, snapshots: list[Any]) -> None:
            (snapshot,) = snapshots
            now = datetime.now(UTC)
            before = snapshot.to_dict() if snapshot.exists else None
            document = failure.to_document(now)
            if before is None:
                transaction.set(ref, {**document, "count": 1, "first_seen": now})
            else:  # first_seen stays
                transaction.set(ref, {**document, "count": int(before.get("count") or 0) + 1}, merge=True)
            waiting_counts.count_write(transaction, self.client, before, document)

        run_read_write(self.client, [ref], body, f"record failure {failure.record_id}")
        return failure.record_id

    def record_in(self, transaction: Any, failure: FailedDelivery) -> str:
        """Record a failure inside the caller's transaction (it commits with the caller's other writes).

        Used when part of a delivery succeeds and part fails permanently; the ledger entry of that transaction
        guarantees this runs once, and the record's id names this delivery's message, so the record is new: it is
        written whole and counted as waiting without reading it (a transaction cannot read after its writes).
        """
        from eventkit import waiting_counts

        now = datetime.now(UTC)
        ref = self.client.collection(self.collection).document(failure.record_id)
        document = failure.to_document(now)
        transaction.set(ref, {**document, "count": 1, "first_seen": now})
        waiting_counts.count_write(transaction, self.client, None, document)
        return failure.record_id
