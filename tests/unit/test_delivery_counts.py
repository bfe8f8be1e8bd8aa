"""Delivery counts kept in memory: written when the last request leaves or after a second, kept (and held back a
while) when Firestore does not take them, never written for in-memory stores."""

from __future__ import annotations

from typing import Any

from eventkit.delivery_counts import DeliveryCounts

SUB = "projects/p/subscriptions/inventory-order-events"


class _Batch:
    def __init__(self, db: _Db) -> None:
        self.db, self.sets = db, []

    def set(self, ref: Any, fields: dict[str, Any], merge: bool = False) -> None:
        self.sets.append((ref, fields["count"].value))

    def commit(self, retry: Any = None, timeout: float | None = None) -> None:
        if self.db.down:
            raise TimeoutError("firestore not answering")
        self.db.committed.extend(self.sets)


class _Db:
    def __init__(self) -> None:
        self.down, self.committed = False, []

    def batch(self) -> _Batch:
        return _Batch(self)

    def collection(self, name: str) -> Any:
        return self

    def document(self, doc_id: str) -> str:
        return doc_id


def test_counts_are_due_when_the_last_request_leaves_and_written_as_one_increment_per_window() -> None:
    db = _Db()
    counts = DeliveryCounts(db)
    assert not counts.due(last_out=True)  # nothing pending

    for _ in range(3):
        counts.add(SUB)
    counts.add(None)  # not through a subscription: not counted

    assert not counts.due(last_out=False) and counts.due(last_out=True)
    assert counts.flush() == 3
    assert [(ref.split("@")[0], n) for ref, n in db.committed] == [("inventory-order-events", 3)]


def test_counts_firestore_did_not_take_are_kept_and_not_retried_at_once() -> None:
    db = _Db()
    counts = DeliveryCounts(db)
    counts.add(SUB)
    db.down = True

    assert counts.flush() == 0
    assert not counts.due(last_out=True)  # held back after a failure
    counts._quiet_until = 0.0  # RETRY_AFTER later
    db.down = False
    counts.add(SUB)

    assert counts.due(last_out=True) and counts.flush() == 2


def test_in_memory_stores_count_but_never_write() -> None:
    counts = DeliveryCounts(None)
    counts.add(SUB)

    assert counts.flush() == 0
