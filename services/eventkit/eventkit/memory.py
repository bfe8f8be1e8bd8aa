"""In-memory stores: a consumer's routing, ledger and outcome logic, tested in milliseconds without Firestore.

    stores = memory_stores(published)           # published: a list each sent message is appended to
    consumer = Consumer("inventory", environ=..., stores=stores)

:class:`MemoryDocuments` is as much of a Firestore client as eventkit and simple handlers use (``collection``,
``document``, snapshots, a transaction with ``get_all``/``set``/``update``/``create``/``delete``); a transaction
holds one process-wide lock from its first read to its commit, so transactions never interleave. Not for
production: nothing is kept, nothing is shared between processes.
"""

from __future__ import annotations

import copy
import itertools
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from eventkit.failures import FailedDelivery
from eventkit.idempotency import DEFAULT_TTL, IdempotencyRecord, Ledger, Once, RecordState, Write, decide, proceed
from eventkit.outbox import Outbox
from eventkit.service import Stores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemorySnapshot:
    reference: MemoryRef
    data: dict[str, Any] | None

    @property
    def exists(self) -> bool:
        return self.data is not None

    @property
    def id(self) -> str:
        return self.reference.id

    def to_dict(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.data)

    def get(self, name: str) -> Any:
        if self.data is None:
            raise KeyError(name)
        return self.data.get(name)


@dataclass(frozen=True)
class MemoryRef:
    store: MemoryDocuments = field(repr=False, compare=False)
    path: str

    @property
    def id(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def get(self, transaction: MemoryTransaction | None = None) -> MemorySnapshot:
        return self.store.read(self.path)

    def set(self, data: dict[str, Any], merge: bool = False) -> None:
        self.store.write(self.path, data, merge=merge)

    def update(self, data: dict[str, Any]) -> None:
        if not self.store.read(self.path).exists:
            raise KeyError(f"{self.path} does not exist")
        self.store.write(self.path, data, merge=True)

    def create(self, data: dict[str, Any]) -> None:
        if self.store.read(self.path).exists:
            raise KeyError(f"{self.path} already exists")
        self.store.write(self.path, data)

    def delete(self) -> None:
        self.store.remove(self.path)

    def collection(self, name: str) -> MemoryCollection:
        return MemoryCollection(self.store, f"{self.path}/{name}")


@dataclass(frozen=True)
class MemoryCollection:
    store: MemoryDocuments = field(repr=False)
    path: str

    def document(self, doc_id: str) -> MemoryRef:
        return MemoryRef(self.store, f"{self.path}/{doc_id}")

    def stream(self) -> Iterable[MemorySnapshot]:
        prefix = self.path + "/"
        return [self.store.read(p) for p in self.store.paths() if p.startswith(prefix) and "/" not in p[len(prefix) :]]

    def where(self, *, filter: Any) -> MemoryQuery:
        return MemoryQuery(self, [(filter.field_path, filter.op_string, filter.value)])


@dataclass(frozen=True)
class MemoryQuery:
    """Equality filters only: what the outbox's flush of one cause asks."""

    collection: MemoryCollection
    filters: list[tuple[str, str, Any]]

    def where(self, *, filter: Any) -> MemoryQuery:
        return MemoryQuery(self.collection, [*self.filters, (filter.field_path, filter.op_string, filter.value)])

    def stream(self) -> Iterable[MemorySnapshot]:
        if any(op != "==" for _, op, _ in self.filters):
            raise NotImplementedError("MemoryQuery supports == filters only")
        return [
            snapshot
            for snapshot in self.collection.stream()
            if all((snapshot.to_dict() or {}).get(name) == value for name, _, value in self.filters)
        ]


class MemoryTransaction:
    """Reads under the store's lock; writes staged and applied at commit (in the order made)."""

    def __init__(self, store: MemoryDocuments) -> None:
        self.store = store
        self.writes: list[tuple[str, str, dict[str, Any] | None]] = []

    def get_all(self, refs: Sequence[MemoryRef]) -> list[MemorySnapshot]:
        return [self.store.read(ref.path) for ref in refs]

    def set(self, ref: MemoryRef, data: dict[str, Any], merge: bool = False) -> None:
        self.writes.append(("merge" if merge else "set", ref.path, data))

    def update(self, ref: MemoryRef, data: dict[str, Any]) -> None:
        self.writes.append(("update", ref.path, data))

    def create(self, ref: MemoryRef, data: dict[str, Any]) -> None:
        self.writes.append(("create", ref.path, data))

    def delete(self, ref: MemoryRef) -> None:
        self.writes.append(("delete", ref.path, None))

    def commit(self) -> None:
        for kind, path, _data in self.writes:
            exists = self.store.read(path).exists
            if kind == "update" and not exists:
                raise KeyError(f"update of {path}, which does not exist")
            if kind == "create" and exists:
                raise KeyError(f"create of {path}, which already exists")
        for kind, path, data in self.writes:
            if kind == "delete":
                self.store.remove(path)
            else:
                self.store.write(path, data or {}, merge=kind in ("merge", "update"))


class MemoryDocuments:
    """Documents by path, in a dict."""

    def __init__(self) -> None:
        self._docs: dict[str, dict[str, Any]] = {}
        self._guard = threading.RLock()
        self.transaction_lock = threading.Lock()

    def collection(self, name: str) -> MemoryCollection:
        return MemoryCollection(self, name)

    def document(self, path: str) -> MemoryRef:
        return MemoryRef(self, path)

    def read(self, path: str) -> MemorySnapshot:
        with self._guard:
            data = self._docs.get(path)
            return MemorySnapshot(MemoryRef(self, path), copy.deepcopy(data) if data is not None else None)

    def write(self, path: str, data: dict[str, Any], *, merge: bool = False) -> None:
        with self._guard:
            base = self._docs.get(path, {}) if merge else {}
            self._docs[path] = {**base, **copy.deepcopy(data)}

    def remove(self, path: str) -> None:
        with self._guard:
            self._docs.pop(path, None)

    def paths(self) -> list[str]:
        with self._guard:
            return sorted(self._docs)

    def run(self, refs: Sequence[MemoryRef], body: Write[Any]) -> Any:
        """``body(transaction, snapshots of refs)``, then commit; nothing is written if it raises."""
        with self.transaction_lock:
            transaction = MemoryTransaction(self)
            result = body(transaction, transaction.get_all(refs))
            transaction.commit()
            return result


class MemoryLedger(Ledger):
    def __init__(self, documents: MemoryDocuments, *, ttl: timedelta = DEFAULT_TTL) -> None:
        self.client, self.ttl = documents, ttl

    def get(self, consumer: str, key: str) -> IdempotencyRecord | None:
        snapshot = self.ref(consumer, key).get()
        return IdempotencyRecord.from_document(snapshot.to_dict()) if snapshot.exists else None

    def run_once(
        self, consumer: str, key: str, payload_hash_: str, write: Write[Any], *, also_read: Sequence[Any] = ()
    ) -> Once[Any]:
        ref = self.ref(consumer, key)

        def body(transaction: MemoryTransaction, snapshots: list[MemorySnapshot]) -> Once[Any]:
            now = datetime.now(UTC)
            if not proceed(decide(self.get(consumer, key), payload_hash_, now), consumer, key):
                return Once(duplicate=True)
            result = write(transaction, snapshots[1:])
            transaction.set(ref, IdempotencyRecord.completed(consumer, key, payload_hash_, now, self.ttl).to_document())
            return Once(duplicate=False, result=result)

        return self.client.run([ref, *also_read], body)

    def acquire(self, consumer: str, key: str, payload_hash_: str, lease: timedelta) -> str | None:
        token = f"lease-{next(_tokens)}"

        def body(transaction: MemoryTransaction, _: list[MemorySnapshot]) -> str | None:
            now = datetime.now(UTC)
            if not proceed(decide(self.get(consumer, key), payload_hash_, now), consumer, key):
                return None
            record = IdempotencyRecord.leased(consumer, key, payload_hash_, now, self.ttl, lease, token)
            transaction.set(self.ref(consumer, key), record.to_document())
            return token

        return self.client.run([], body)

    def complete(self, consumer: str, key: str, token: str) -> None:
        self.ref(consumer, key).set(
            {"status": RecordState.COMPLETED.value, "completed_at": datetime.now(UTC), "lease_expires_at": None},
            merge=True,
        )

    def release(self, consumer: str, key: str, token: str) -> None:
        record = self.get(consumer, key)
        if record and record.state is RecordState.IN_PROGRESS and record.lease_token == token:
            self.ref(consumer, key).delete()


_tokens = itertools.count(1)


class MemoryFailures:
    """Failure records in a list (``FailureRecorder``'s two methods)."""

    def __init__(self) -> None:
        self.records: dict[str, FailedDelivery] = {}

    def record(self, failure: FailedDelivery) -> str:
        self.records[failure.record_id] = failure
        return failure.record_id

    def record_in(self, transaction: MemoryTransaction, failure: FailedDelivery) -> str:
        self.records[failure.record_id] = failure  # kept even if the transaction fails: tests read it
        return failure.record_id


@dataclass
class Published:
    """What the in-memory stores' outbox sent: (topic path, data, attributes, ordering key) per message."""

    messages: list[tuple[str, bytes, dict[str, str], str | None]] = field(default_factory=list)

    def __call__(
        self,
        topic_path: str,
        data: bytes,
        attributes: dict[str, str],
        *,
        ordering_key: str | None = None,
        timeout: float = 0,
        log_line: bool = True,
    ) -> str:
        self.messages.append((topic_path, data, dict(attributes), ordering_key))
        return str(len(self.messages))


def memory_stores(published: Published | None = None) -> Stores:
    """Stores that live in this process: documents, ledger, failure records, and an outbox whose publish appends
    to ``published``."""
    documents = MemoryDocuments()
    return Stores(
        db=documents,
        ledger=MemoryLedger(documents),
        failures=MemoryFailures(),
        outbox=Outbox(documents, send=published if published is not None else Published()),
    )
