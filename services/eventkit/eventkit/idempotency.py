"""The idempotency ledger: exactly-once *effects* on at-least-once delivery.

One ledger entry per (consumer, key); the key is the domain event id, stable across redelivery and replay. The
record's state machine (Powertools' shape), decided by :func:`decide` and nothing else:

| entry found | payload hash | state | decision |
| --- | --- | --- | --- |
| none | - | - | ``RUN`` |
| yes | differs | any | ``CONFLICT`` (a producer reused a key: permanent) |
| yes | same | ``COMPLETED`` | ``DUPLICATE`` |
| yes | same | ``IN_PROGRESS``, lease live | ``HELD`` (retry later) |
| yes | same | ``IN_PROGRESS``, lease passed | ``RUN`` (take over) |

A :class:`Ledger` is the store interface; two uses of it:

- :meth:`Ledger.run_once`: for effects that are Firestore writes. They and the entry (``COMPLETED``) commit in
  ONE transaction: both happen or neither, and a duplicate finds the entry and changes nothing.
- :meth:`Ledger.side_effect_once`: for effects outside Firestore (email, a payment gateway). An ``IN_PROGRESS``
  lease guards the effect; pass the same key downstream so the other system dedupes the window in which a lease
  expires mid-call.

:class:`FirestoreLedger` keeps it in Firestore (every entry carries ``expires_at`` for a TTL policy, see
terraform/); ``eventkit.memory.MemoryLedger`` keeps it in a dict, for fast tests of what runs on top.
"""

from __future__ import annotations

import abc
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
from eventkit.transactions import CONTENTION_BUDGET_SECONDS, run_read_write

log = logging.getLogger(__name__)

T = TypeVar("T")
LEDGER_COLLECTION = "idempotency"
DEFAULT_TTL = timedelta(days=7)

# ``write(transaction, snapshots)``: the caller's writes in the ledger's transaction, given the snapshots of the
# documents it asked to read with the entry.
Write = Callable[[Any, list[Any]], T]


class RecordState(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


class Decision(StrEnum):
    RUN = "run"
    DUPLICATE = "duplicate"
    HELD = "held"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class IdempotencyRecord:
    consumer: str
    key: str
    state: RecordState
    payload_hash: str
    expires_at: datetime
    lease_expires_at: datetime | None = None
    lease_token: str | None = None
    completed_at: datetime | None = None

    @classmethod
    def completed(cls, consumer: str, key: str, payload_hash_: str, now: datetime, ttl: timedelta) -> IdempotencyRecord:
        return cls(consumer, key, RecordState.COMPLETED, payload_hash_, now + ttl, completed_at=now)

    @classmethod
    def leased(
        cls, consumer: str, key: str, payload_hash_: str, now: datetime, ttl: timedelta, lease: timedelta, token: str
    ) -> IdempotencyRecord:
        return cls(
            consumer,
            key,
            RecordState.IN_PROGRESS,
            payload_hash_,
            now + ttl,
            lease_expires_at=now + lease,
            lease_token=token,
        )

    def lease_expired(self, now: datetime) -> bool:
        return self.state is RecordState.IN_PROGRESS and (self.lease_expires_at is None or self.lease_expires_at <= now)

    def to_document(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "key": self.key,
            "status": self.state.value,
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
            state=RecordState(doc["status"]),
            payload_hash=doc.get("payload_hash", ""),
            expires_at=doc["expires_at"],
            lease_expires_at=doc.get("lease_expires_at"),
            lease_token=doc.get("lease_token"),
            completed_at=doc.get("completed_at"),
        )


@dataclass(frozen=True)
class Once(Generic[T]):
    """What :meth:`Ledger.run_once` did: ran the write (``duplicate=False``) or found it done."""

    duplicate: bool
    result: T | None = None


def payload_hash(payload: Any) -> str:
    """A stable hash of a JSON-able payload (key order does not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def ledger_document_id(consumer: str, key: str) -> str:
    """``consumer:key``, escaped for a Firestore document id; hashed if too long to be one."""
    doc_id = f"{quote(consumer, safe='')}:{quote(key, safe='')}"
    if len(doc_id.encode()) > 1000:
        doc_id = f"{quote(consumer, safe='')}:sha256-{hashlib.sha256(key.encode()).hexdigest()}"
    return doc_id


def decide(existing: IdempotencyRecord | None, payload_hash_: str, now: datetime) -> Decision:
    """The state machine's one decision, pure (see the module's table)."""
    if existing is None:
        return Decision.RUN
    if existing.payload_hash and existing.payload_hash != payload_hash_:
        return Decision.CONFLICT
    if existing.state is RecordState.COMPLETED:
        return Decision.DUPLICATE
    return Decision.RUN if existing.lease_expired(now) else Decision.HELD


def proceed(decision: Decision, consumer: str, key: str) -> bool:
    """True to run, False for a duplicate; raise for a held lease (retryable) or a reused key (permanent)."""
    if decision is Decision.HELD:
        raise LeaseHeldError(f"{consumer} is already processing {key} (lease held)")
    if decision is Decision.CONFLICT:
        raise IdempotencyKeyConflictError(
            f"idempotency key {key!r} was already used by {consumer} for a different payload"
        )
    return decision is Decision.RUN


class Ledger(abc.ABC):
    """The store interface. ``run_once``'s ``write`` may run more than once (a store may retry an aborted
    transaction), so it must only read and write through the transaction it is given."""

    ttl: timedelta
    client: Any  # the documents the entries live in (a Firestore client, or eventkit.memory.MemoryDocuments)
    collection: str = LEDGER_COLLECTION

    def ref(self, consumer: str, key: str) -> Any:
        """The entry's document."""
        return self.client.collection(self.collection).document(ledger_document_id(consumer, key))

    @abc.abstractmethod
    def get(self, consumer: str, key: str) -> IdempotencyRecord | None: ...

    @abc.abstractmethod
    def run_once(
        self, consumer: str, key: str, payload_hash_: str, write: Write[T], *, also_read: Sequence[Any] = ()
    ) -> Once[T]:
        """``write(transaction, snapshots)`` and the ``COMPLETED`` entry, atomically, unless already done.
        ``also_read``: documents read with the entry, in one round trip; their snapshots, in order, go to
        ``write`` (not read on a duplicate)."""

    @abc.abstractmethod
    def acquire(self, consumer: str, key: str, payload_hash_: str, lease: timedelta) -> str | None:
        """Take the ``IN_PROGRESS`` lease: a token, or ``None`` if the key is already ``COMPLETED``."""

    @abc.abstractmethod
    def complete(self, consumer: str, key: str, token: str) -> None:
        """Mark the leased side effect done (a lease taken over meanwhile is logged: the downstream key
        is then what prevents a double effect)."""

    @abc.abstractmethod
    def release(self, consumer: str, key: str, token: str) -> None:
        """Give the lease back after a failed attempt, so the redelivery can retry at once."""

    @contextlib.contextmanager
    def side_effect_once(
        self, consumer: str, key: str, payload_hash_: str, lease: timedelta = timedelta(minutes=2)
    ) -> Iterator[bool]:
        """``with ledger.side_effect_once(...) as run: if run: send()``: ``run`` is False for a duplicate.
        On success the entry is ``COMPLETED``; on an exception the lease is released and the exception propagates."""
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


class FirestoreLedger(Ledger):
    """The ledger in a Firestore collection (``idempotency`` by default). Concurrent duplicates of one key
    contend on its entry; transactions.py retries the aborts within ``contention_budget`` (below the push
    subscription's ack deadline), then the caller answers 503 and Pub/Sub redelivers."""

    def __init__(
        self,
        client: Any,
        *,
        ttl: timedelta = DEFAULT_TTL,
        collection: str = LEDGER_COLLECTION,
        contention_budget: float = CONTENTION_BUDGET_SECONDS,
    ):
        self.client = client
        self.ttl = ttl
        self.collection = collection
        self.contention_budget = contention_budget

    def get(self, consumer: str, key: str) -> IdempotencyRecord | None:
        return _record(self.ref(consumer, key).get())

    def run_once(
        self, consumer: str, key: str, payload_hash_: str, write: Write[T], *, also_read: Sequence[Any] = ()
    ) -> Once[T]:
        ref = self.ref(consumer, key)

        def attempt(transaction: Any, snapshots: list[Any]) -> Once[T]:
            now = datetime.now(UTC)
            if not proceed(decide(_record(snapshots[0]), payload_hash_, now), consumer, key):
                return Once(duplicate=True)
            result = write(transaction, snapshots[1:])
            record = IdempotencyRecord.completed(consumer, key, payload_hash_, now, self.ttl)
            transaction.set(ref, record.to_document())
            return Once(duplicate=False, result=result)

        return run_read_write(self.client, [ref, *also_read], attempt, f"{consumer}/{key}", self.contention_budget)

    def acquire(self, consumer: str, key: str, payload_hash_: str, lease: timedelta) -> str | None:
        ref = self.ref(consumer, key)
        token = uuid.uuid4().hex

        def attempt(transaction: Any, snapshots: list[Any]) -> str | None:
            now = datetime.now(UTC)
            if not proceed(decide(_record(snapshots[0]), payload_hash_, now), consumer, key):
                return None
            record = IdempotencyRecord.leased(consumer, key, payload_hash_, now, self.ttl, lease, token)
            transaction.set(ref, record.to_document())
            return token

        return run_read_write(self.client, [ref], attempt, f"{consumer}/{key}", self.contention_budget)

    def complete(self, consumer: str, key: str, token: str) -> None:
        ref = self.ref(consumer, key)
        snapshot = ref.get()
        if snapshot.exists and snapshot.get("lease_token") != token:
            log.warning("lease was taken over before completion", extra={"fields": {"consumer": consumer, "key": key}})
        now = datetime.now(UTC)
        ref.update({"status": RecordState.COMPLETED.value, "completed_at": now, "lease_expires_at": None})

    def release(self, consumer: str, key: str, token: str) -> None:
        ref = self.ref(consumer, key)

        def attempt(transaction: Any, snapshots: list[Any]) -> None:
            record = _record(snapshots[0])
            if record and record.state is RecordState.IN_PROGRESS and record.lease_token == token:
                transaction.delete(ref)

        run_read_write(self.client, [ref], attempt, f"{consumer}/{key}", self.contention_budget)


def _record(snapshot: Any) -> IdempotencyRecord | None:
    return IdempotencyRecord.from_document(snapshot.to_dict()) if snapshot.exists else None
