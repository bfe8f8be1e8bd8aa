"""The idempotency ledger: exactly-once *effects* on at-least-once delivery, kept in Firestore.

One ledger entry per (consumer, key) — the key is the domain event id, stable across redelivery and replay.
Two ways to use it:

- :meth:`FirestoreLedger.run_once` — for effects that are Firestore writes. The consumer's writes and the
  ledger entry commit in ONE transaction: either both happen or neither, and a duplicate finds the entry and
  changes nothing.
- :meth:`FirestoreLedger.side_effect_once` — for effects outside Firestore (email, a payment gateway). An
  in-progress lease with an expiry guards the effect; the same key should be passed downstream so the other
  system can dedupe the narrow window in which a lease expires mid-call.

Record states: ``IN_PROGRESS`` (lease held until ``lease_expires_at``) → ``COMPLETED``; an in-progress record
whose lease has passed is *expired* and may be taken over. Every entry carries ``expires_at`` for a Firestore
TTL policy (see terraform/), so the ledger does not grow forever. ``payload_hash`` catches a key reused for a
different payload (a producer bug), which is a permanent error rather than a silent skip.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from eventkit.errors import IdempotencyKeyConflictError, LeaseHeldError
from eventkit.keyed_locks import KeyedLocks
from eventkit.transactions import CONTENTION_BUDGET_SECONDS, run_read_write

log = logging.getLogger(__name__)

T = TypeVar("T")
LEDGER_COLLECTION = "idempotency"
# Concurrent duplicates contend on one ledger document (see transactions.py); the budget stays below the push
# subscription's ack deadline, then Pub/Sub is asked to redeliver.


class Status(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class IdempotencyRecord:
    consumer: str
    key: str
    status: Status
    payload_hash: str
    expires_at: datetime
    lease_expires_at: datetime | None = None
    lease_token: str | None = None
    completed_at: datetime | None = None

    def lease_expired(self, now: datetime) -> bool:
        return self.status is Status.IN_PROGRESS and (self.lease_expires_at is None or self.lease_expires_at <= now)

    def to_document(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "key": self.key,
            "status": self.status.value,
            "payload_hash": self.payload_hash,
            "expires_at": self.expires_at,
            "lease_expires_at": self.lease_expires_at,
            "lease_token": self.lease_token,
            "completed_at": self.completed_at,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> IdempotencyRecord:
        return cls(
            consumer=doc["consumer"],
            key=doc["key"],
            status=Status(doc["status"]),
            payload_hash=doc.get("payload_hash", ""),
            expires_at=doc["expires_at"],
            lease_expires_at=doc.get("lease_expires_at"),
            lease_token=doc.get("lease_token"),
            completed_at=doc.get("completed_at"),
        )


@dataclass(frozen=True)
class Once(Generic[T]):
    """What :meth:`FirestoreLedger.run_once` did: ran the write (``duplicate=False``) or found it done."""

    duplicate: bool
    result: T | None = None


def payload_hash(payload: Any) -> str:
    """A stable hash of a JSON-able payload (key order does not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _record(snapshot: Any) -> IdempotencyRecord | None:
    return IdempotencyRecord.from_document(snapshot.to_dict()) if snapshot.exists else None


def ledger_document_id(consumer: str, key: str) -> str:
    """``consumer:key``, escaped for a Firestore document id; hashed if too long to be one."""
    doc_id = f"{quote(consumer, safe='')}:{quote(key, safe='')}"
    if len(doc_id.encode()) > 1000:
        doc_id = f"{quote(consumer, safe='')}:sha256-{hashlib.sha256(key.encode()).hexdigest()}"
    return doc_id


def decide(existing: IdempotencyRecord | None, payload_hash_: str, now: datetime) -> str:
    """The state machine's one decision, pure: ``run`` | ``duplicate`` | ``held`` (raises on key reuse)."""
    if existing is None:
        return "run"
    if existing.payload_hash and existing.payload_hash != payload_hash_:
        raise IdempotencyKeyConflictError(
            f"idempotency key {existing.key!r} was already used by {existing.consumer} for a different payload"
        )
    if existing.status is Status.COMPLETED:
        return "duplicate"
    return "run" if existing.lease_expired(now) else "held"


class FirestoreLedger:
    """The ledger in a Firestore collection (``idempotency`` by default)."""

    def __init__(
        self,
        client: Any,
        *,
        ttl: timedelta = timedelta(days=7),
        collection: str = LEDGER_COLLECTION,
        contention_budget: float = CONTENTION_BUDGET_SECONDS,
    ):
        self.client = client
        self.ttl = ttl
        self.collection = collection
        self.contention_budget = contention_budget
        self._in_flight = KeyedLocks()

    def _transact(self, refs: Sequence[Any], attempt: Callable[[Any, list[Any]], T], what: str) -> T:
        """Every ledger transaction starts by reading its entry (first in ``refs``): that read begins it."""
        return run_read_write(self.client, refs, attempt, what, self.contention_budget)

    def _single_flight(self, consumer: str, key: str) -> contextlib.AbstractContextManager[None]:
        """Duplicates arriving at one instance at once queue here instead of colliding in Firestore."""
        return self._in_flight.hold([f"{consumer}\0{key}"])

    def _ref(self, consumer: str, key: str) -> Any:
        return self.client.collection(self.collection).document(ledger_document_id(consumer, key))

    def get(self, consumer: str, key: str) -> IdempotencyRecord | None:
        return _record(self._ref(consumer, key).get())

    def run_once(self, consumer: str, key: str, payload_hash_: str, write: Callable[[Any], T]) -> Once[T]:
        """Run ``write(transaction)`` and record ``key`` as done, atomically; skip if already done.

        ``write`` may run more than once (Firestore retries aborted transactions), so it must only read and
        write through the transaction it is given — no other side effects.
        """
        return self.run_once_reading(consumer, key, payload_hash_, (), lambda transaction, _: write(transaction))

    def run_once_reading(
        self,
        consumer: str,
        key: str,
        payload_hash_: str,
        also_read: Sequence[Any],
        write: Callable[[Any, list[Any]], T],
    ) -> Once[T]:
        """:meth:`run_once`, with the documents ``also_read`` read in the same round trip as the ledger entry
        (the one that begins the transaction): ``write(transaction, snapshots)`` gets their snapshots in order,
        so a write that needs them costs no read of its own. Not read again on a duplicate."""
        ref = self._ref(consumer, key)

        def attempt(transaction: Any, snapshots: list[Any]) -> Once[T]:
            existing = _record(snapshots[0])
            now = datetime.now(UTC)
            decision = decide(existing, payload_hash_, now)
            if decision == "duplicate":
                return Once(duplicate=True)
            if decision == "held":
                raise LeaseHeldError(f"{consumer} is already processing {key} (lease held)")
            result = write(transaction, snapshots[1:])
            record = IdempotencyRecord(consumer, key, Status.COMPLETED, payload_hash_, now + self.ttl, completed_at=now)
            transaction.set(ref, record.to_document())
            return Once(duplicate=False, result=result)

        with self._single_flight(consumer, key):
            return self._transact([ref, *also_read], attempt, f"{consumer}/{key}")

    def acquire(self, consumer: str, key: str, payload_hash_: str, lease: timedelta) -> str | None:
        """Take the in-progress lease: a token if acquired, ``None`` if the key is already COMPLETED.

        Raises :class:`LeaseHeldError` (retryable) while another delivery holds a live lease.
        """
        ref = self._ref(consumer, key)
        token = uuid.uuid4().hex

        def attempt(transaction: Any, snapshots: list[Any]) -> str | None:
            existing = _record(snapshots[0])
            now = datetime.now(UTC)
            decision = decide(existing, payload_hash_, now)
            if decision == "duplicate":
                return None
            if decision == "held":
                raise LeaseHeldError(f"{consumer} is already processing {key} (lease held)")
            record = IdempotencyRecord(
                consumer,
                key,
                Status.IN_PROGRESS,
                payload_hash_,
                now + self.ttl,
                lease_expires_at=now + lease,
                lease_token=token,
            )
            transaction.set(ref, record.to_document())
            return token

        with self._single_flight(consumer, key):
            return self._transact([ref], attempt, f"{consumer}/{key}")

    def complete(self, consumer: str, key: str, token: str) -> None:
        """Mark the side effect done. If the lease had expired and was taken over, say so: that is the window
        in which the downstream idempotency key is what prevents a double effect."""
        ref = self._ref(consumer, key)
        now = datetime.now(UTC)
        snapshot = ref.get()
        if snapshot.exists and snapshot.get("lease_token") != token:
            log.warning(
                "lease was taken over before completion",
                extra={"fields": {"consumer": consumer, "key": key}},
            )
        ref.update({"status": Status.COMPLETED.value, "completed_at": now, "lease_expires_at": None})

    def release(self, consumer: str, key: str, token: str) -> None:
        """Give the lease back after a failed attempt, so the redelivery can retry at once."""
        ref = self._ref(consumer, key)

        def attempt(transaction: Any, snapshots: list[Any]) -> None:
            snapshot = snapshots[0]
            if (
                snapshot.exists
                and snapshot.get("status") == Status.IN_PROGRESS.value
                and snapshot.get("lease_token") == token
            ):
                transaction.delete(ref)

        self._transact([ref], attempt, f"{consumer}/{key}")

    @contextlib.contextmanager
    def side_effect_once(
        self, consumer: str, key: str, payload_hash_: str, lease: timedelta = timedelta(minutes=2)
    ) -> Iterator[bool]:
        """``with ledger.side_effect_once(...) as run: if run: send()`` — ``run`` is False for a duplicate.

        On success the record is COMPLETED; on an exception the lease is released and the exception propagates.
        """
        token = self.acquire(consumer, key, payload_hash_, lease)
        if token is None:
            yield False
            return
        try:
            yield True
        except BaseException:
            self.release(consumer, key, token)
            raise
        self.complete(consumer, key, token)
