"""eventkit.transactions against the Firestore emulator: a transaction begun by its first read.

``run_read_write`` drives the client library's transaction object past its public API (the library always sends
BeginTransaction first); these tests pin that it still reads, commits, rolls back and retries as a transaction.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from eventkit.transactions import run_read_write


def _doc(db: Any, name: str) -> Any:
    return db.collection("tx-tests").document(name)


def _write_goes_through_at_once(db: Any, ref: Any, value: dict[str, Any]) -> None:
    """A read-then-write transaction on ``ref`` commits in well under the emulator's ~2 s lock timeout: nothing
    is left holding the document's lock."""
    started = time.monotonic()
    run_read_write(db, [ref], lambda tx, snaps: tx.set(ref, value), "test")
    assert time.monotonic() - started < 1.0
    assert ref.get().to_dict() == value


def test_the_first_read_begins_the_transaction_and_its_writes_commit(db: Any) -> None:
    present, absent = _doc(db, "present"), _doc(db, "absent")
    present.set({"n": 1})

    def body(transaction: Any, snapshots: list[Any]) -> list[Any]:
        assert transaction.in_progress  # begun by the read, no BeginTransaction
        transaction.set(absent, {"n": snapshots[0].get("n") + 1})
        return [(s.id, s.exists) for s in snapshots]

    seen = run_read_write(db, [present, absent, present], body, "test")

    assert seen == [("present", True), ("absent", False), ("present", True)]  # in the order asked, repeats kept
    assert absent.get().to_dict() == {"n": 2}


def test_a_body_that_raises_rolls_back_and_releases_its_locks_at_once(db: Any) -> None:
    ref = _doc(db, "raises")
    ref.set({"n": 1})

    def failing(transaction: Any, snapshots: list[Any]) -> None:
        transaction.set(ref, {"n": 99})
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        run_read_write(db, [ref], failing, "test")

    assert ref.get().to_dict() == {"n": 1}  # the body's write did not commit
    _write_goes_through_at_once(db, ref, {"n": 2})  # without the rollback it would wait ~2 s for the read lock


def test_a_failed_commit_rolls_back_and_releases_its_locks_at_once(db: Any) -> None:
    ref, taken = _doc(db, "commit-fails"), _doc(db, "taken")
    ref.set({"n": 1})
    taken.set({"n": 0})

    with pytest.raises(Exception, match=r"already exists|ALREADY_EXISTS|409"):
        run_read_write(db, [ref], lambda tx, snaps: tx.create(taken, {"n": 1}), "test")  # fails at the commit

    _write_goes_through_at_once(db, ref, {"n": 2})


def test_a_body_that_writes_nothing_releases_its_locks_too(db: Any) -> None:
    ref = _doc(db, "read-only")
    ref.set({"n": 1})

    assert run_read_write(db, [ref], lambda tx, snaps: snaps[0].get("n"), "test") == 1

    _write_goes_through_at_once(db, ref, {"n": 5})


def test_colliding_read_then_write_transactions_are_retried_and_both_apply(db: Any) -> None:
    ref = _doc(db, "counter")
    ref.set({"n": 0})
    both_read = threading.Barrier(2)
    attempts: list[int] = []

    def increment(transaction: Any, snapshots: list[Any]) -> None:
        attempts.append(1)
        if len(attempts) <= 2:
            both_read.wait(timeout=10)  # make the first two attempts overlap: one of them must abort
        transaction.set(ref, {"n": snapshots[0].get("n") + 1})

    threads = [threading.Thread(target=run_read_write, args=(db, [ref], increment, "test")) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert ref.get().to_dict() == {"n": 2}  # no lost update
    assert len(attempts) >= 3  # the aborted one ran again


def test_every_retry_names_the_first_aborted_transaction(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # As the client library's own retries do: the server then keeps the retried transaction's place among rivals.
    from google.api_core.exceptions import Aborted

    ref = _doc(db, "retried")
    api = db._firestore_api
    real_batch_get, asked = api.batch_get_documents, []

    def spy(*, request: dict[str, Any], **kwargs: Any) -> Any:
        if "new_transaction" in request:  # not a plain get()
            asked.append(request["new_transaction"].read_write.retry_transaction)
        return real_batch_get(request=request, **kwargs)

    monkeypatch.setattr(api, "batch_get_documents", spy)
    begun: list[bytes] = []

    def aborts_twice(transaction: Any, snapshots: list[Any]) -> str:
        begun.append(transaction._id)
        if len(begun) <= 2:
            raise Aborted("contention (simulated)")
        transaction.set(ref, {"n": 1})
        return "done"

    assert run_read_write(db, [ref], aborts_twice, "test") == "done"

    assert len(set(begun)) == 3  # three transactions
    assert asked == [b"", begun[0], begun[0]]  # the first begins afresh; both retries name the first one
    assert ref.get().to_dict() == {"n": 1}


@pytest.fixture
def without_the_private_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client release that renamed one of the private names the read-begun transaction uses. (Deleting one of
    today's would break the library itself, which uses them too; the check looks for a name no release has.)"""
    from eventkit import transactions

    monkeypatch.setattr(transactions, "_CLIENT_NAMES", (*transactions._CLIENT_NAMES, "_renamed_in_a_later_release"))
    monkeypatch.setattr(transactions, "_supported", {})  # decided again, for this "release"


def test_without_the_private_api_transactions_fall_back_to_the_public_one_and_stay_exact(
    db: Any, without_the_private_api: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from firestore_calls import record_firestore_calls

    counter = _doc(db, "fallback-counter")
    counter.set({"n": 0})
    calls = record_firestore_calls(db, monkeypatch)

    def increment(transaction: Any, snapshots: list[Any]) -> int:
        value = snapshots[0].get("n") + 1
        transaction.update(counter, {"n": value})
        return value

    threads = [threading.Thread(target=run_read_write, args=(db, [counter], increment, "test")) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert counter.get().get("n") == 4  # every increment, none lost: still a transaction
    methods = {call.method for call in calls}
    assert "begin_transaction" in methods  # the public path: BeginTransaction, then the reads
    warnings = [r for r in caplog.records if "public transaction API" in r.getMessage()]
    assert len(warnings) == 1  # said once, not per transaction


def test_without_the_private_api_a_consumer_still_applies_each_event_once(
    clean_stack: dict[str, Any], without_the_private_api: None
) -> None:
    import base64
    import json
    import uuid

    import flask

    from eventkit import Consumer, DomainEvent, HandlerContext
    from eventkit.catalog import CATALOG, ORDER_PLACED
    from eventkit.events import encode_for_pubsub, new_event

    consumer = Consumer(f"test-{uuid.uuid4().hex[:8]}", environ={"GOOGLE_CLOUD_PROJECT": clean_stack["project"]})
    counter = consumer.db.collection("tx-tests").document(uuid.uuid4().hex)
    counter.set({"n": 0})

    @consumer.on(ORDER_PLACED, serialize_on=lambda event: [counter.path])
    def count(event: DomainEvent, ctx: HandlerContext) -> None:
        ctx.transaction.update(counter, {"n": ctx.get(counter).get("n") + 1})

    order = {"order_id": "o-1", "customer_id": "c", "items": [{"sku": "S", "quantity": 1, "unit_price": 1}]}
    event = new_event(CATALOG, ORDER_PLACED, {**order, "total": 1, "currency": "EUR"}, source="//tests")
    data, attributes = encode_for_pubsub(event)
    envelope = {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": "m"}}
    statuses = []
    for _ in range(2):
        with flask.Flask("fallback").test_request_context("/", method="POST", json=envelope):
            statuses.append(json.loads(consumer.handle(flask.request)[0])["status"])

    assert statuses == ["processed", "duplicate"]
    assert counter.get().get("n") == 1
