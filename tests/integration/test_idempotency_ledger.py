"""The idempotency ledger against the real Firestore emulator: exactly-once effects, leases, key reuse."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from eventkit.errors import IdempotencyKeyConflictError, LeaseHeldError, RetryableError
from eventkit.idempotency import FirestoreLedger, Once, RecordState, payload_hash

HASH = payload_hash({"order": 1})


def _increment(db: Any, doc: str) -> Any:
    def write(transaction: Any, _snapshots: list[Any]) -> str:
        transaction.set(db.collection("effects").document(doc), {"count": firestore.Increment(1)}, merge=True)
        return "done"

    return write


def _count(db: Any, doc: str) -> int:
    snapshot = db.collection("effects").document(doc).get()
    return snapshot.get("count") if snapshot.exists else 0


def test_run_once_applies_the_write_once_and_reports_duplicates(db: Any) -> None:
    ledger = FirestoreLedger(db)

    first = ledger.run_once("inventory", "event-1", HASH, _increment(db, "a"))
    second = ledger.run_once("inventory", "event-1", HASH, _increment(db, "a"))

    assert (first.duplicate, first.result) == (False, "done")
    assert (second.duplicate, second.result) == (True, None)
    assert _count(db, "a") == 1
    record = ledger.get("inventory", "event-1")
    assert record is not None and record.state is RecordState.COMPLETED
    assert record.expires_at > datetime.now(UTC) + timedelta(days=6)  # for the TTL policy


def test_run_once_is_scoped_by_consumer(db: Any) -> None:
    ledger = FirestoreLedger(db)

    ledger.run_once("inventory", "event-1", HASH, _increment(db, "inv"))
    other = ledger.run_once("payments", "event-1", HASH, _increment(db, "pay"))

    assert other.duplicate is False
    assert (_count(db, "inv"), _count(db, "pay")) == (1, 1)


def test_ten_concurrent_run_once_calls_apply_one_effect(db: Any) -> None:
    # The ledger has no in-process queueing (the consumer's locks do that: test_hot_documents.py), so only the
    # Firestore transaction keeps this exact, as between instances. Ten
    # rivals on one document can outlast the contention budget on a loaded machine (the emulator resolves each
    # collision by a ~2 s lock timeout); such a call raises RetryableError — the consumer answers 503 and Pub/Sub
    # redelivers — and its redelivery must find the effect done.
    def deliver(_: int) -> Once[str] | RetryableError:
        try:
            return FirestoreLedger(db).run_once("c", "k2", HASH, _increment(db, "x2"))
        except RetryableError as told_to_retry:
            return told_to_retry

    with ThreadPoolExecutor(10) as pool:
        first = list(pool.map(deliver, range(10)))
    retried = [deliver(0) for result in first if isinstance(result, RetryableError)]

    outcomes = [result for result in first + retried if not isinstance(result, RetryableError)]
    assert sorted(outcome.duplicate for outcome in outcomes) == [False] + [True] * 9
    assert _count(db, "x2") == 1


def test_a_failed_write_leaves_no_ledger_entry_so_the_retry_runs(db: Any) -> None:
    ledger = FirestoreLedger(db)

    def failing(transaction: Any, snapshots: list[Any]) -> None:
        _increment(db, "y")(transaction, snapshots)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        ledger.run_once("c", "k", HASH, failing)
    assert ledger.get("c", "k") is None
    assert _count(db, "y") == 0  # the transaction rolled back the business write too
    assert ledger.run_once("c", "k", HASH, _increment(db, "y")).duplicate is False
    assert _count(db, "y") == 1


def test_same_key_with_a_different_payload_is_a_permanent_conflict(db: Any) -> None:
    ledger = FirestoreLedger(db)
    ledger.run_once("c", "k", HASH, _increment(db, "z"))

    with pytest.raises(IdempotencyKeyConflictError, match="different payload"):
        ledger.run_once("c", "k", payload_hash({"order": 2}), _increment(db, "z"))
    assert _count(db, "z") == 1


def test_side_effect_lease_blocks_a_concurrent_duplicate_then_completes(db: Any) -> None:
    ledger = FirestoreLedger(db)
    sent: list[str] = []

    with ledger.side_effect_once("notifications", "event-9", HASH) as run:
        assert run is True
        with pytest.raises(LeaseHeldError), ledger.side_effect_once("notifications", "event-9", HASH):
            pass
        sent.append("email")
    with ledger.side_effect_once("notifications", "event-9", HASH) as run_again:
        if run_again:
            sent.append("email")

    assert sent == ["email"]
    record = ledger.get("notifications", "event-9")
    assert record is not None and record.state is RecordState.COMPLETED


def test_side_effect_lease_is_released_on_failure_so_the_retry_runs_at_once(db: Any) -> None:
    ledger = FirestoreLedger(db)

    with pytest.raises(ConnectionError), ledger.side_effect_once("n", "e", HASH):
        raise ConnectionError("smtp down")
    assert ledger.get("n", "e") is None
    with ledger.side_effect_once("n", "e", HASH) as run:
        assert run is True


def test_an_expired_lease_can_be_taken_over(db: Any) -> None:
    ledger = FirestoreLedger(db)
    token = ledger.acquire("n", "e", HASH, lease=timedelta(seconds=-1))  # already expired
    assert token is not None

    second = ledger.acquire("n", "e", HASH, lease=timedelta(minutes=1))

    assert second is not None and second != token
    record = ledger.get("n", "e")
    assert record is not None and record.lease_token == second
