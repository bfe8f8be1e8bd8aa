"""Failure records on the Firestore emulator, as the console and `python -m dlq` read and change them: pages in
order with a cursor, what waits counted per subscription, and a claim that exactly one of many rivals wins."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from console_support import order_dead_letter, put_record, replay_target

from eventkit.errors import RetryableError
from eventkit.failure_records import NotNew, RecordNotFound, Records
from eventkit.failures import FAILURES_COLLECTION
from eventkit.replay import ReplayError, replay


def test_pages_go_newest_first_and_end(db: Any) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [put_record(db, record_id=f"p-{i:02d}", last_seen=start + timedelta(minutes=i)) for i in range(7)]
    put_record(db, record_id="p-done", status="replayed", last_seen=start + timedelta(hours=1))
    records = Records(db)

    first = records.page(status="new", limit=3)
    second = records.page(status="new", limit=3, after=first.next_after)
    last = records.page(status="new", limit=3, after=second.next_after)

    newest_first = list(reversed(ids))
    assert [r["id"] for r in first.records + second.records + last.records] == newest_first
    assert last.next_after is None
    assert "payload" not in first.records[0]  # a listing does not fetch payloads
    assert [r["id"] for r in records.page(limit=1).records] == ["p-done"]  # every status
    with pytest.raises(RecordNotFound):
        records.page(after="no-such-record")


def test_what_waits_is_counted_per_subscription_and_kind(db: Any, clean_stack: dict[str, Any]) -> None:
    project = clean_stack["project"]
    a, b = (f"projects/{project}/subscriptions/{name}" for name in ("sub-a", "sub-b"))
    for _ in range(3):
        put_record(db, subscription=a)
    put_record(db, subscription=b)
    put_record(db, subscription=b, status="discarded")
    put_record(db)  # no subscription

    waiting = Records(db).waiting([a, b])

    assert waiting.total == 5
    assert waiting.by_subscription == {
        (a, "dead_letter"): 3,
        (a, "permanent_failure"): 0,
        (b, "dead_letter"): 1,
        (b, "permanent_failure"): 0,
    }


def test_of_many_rival_claims_exactly_one_wins(db: Any) -> None:
    record_id = put_record(db)
    records = Records(db)
    outcomes: list[str] = []
    go = threading.Barrier(6)

    def rival() -> None:
        go.wait()
        try:
            records.claim(record_id, "replayed")
            outcomes.append("won")
        except NotNew:
            outcomes.append("refused")

    threads = [threading.Thread(target=rival) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(outcomes) == ["refused"] * 5 + ["won"]
    assert db.collection(FAILURES_COLLECTION).document(record_id).get().get("status") == "replayed"


def test_the_records_of_one_subject_are_found_newest_first_and_no_others(db: Any, clean_stack: dict[str, Any]) -> None:
    project = clean_stack["project"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    older, newer = (order_dead_letter(db, project, "ord-1", last_seen=start + timedelta(minutes=m)) for m in (1, 2))
    db.collection(FAILURES_COLLECTION).document(older).update({"status": "replayed"})  # every status is found
    order_dead_letter(db, project, "ord-10")  # another order, whose id starts the same
    put_record(db, attributes={})  # a delivery that could not be read: no attributes
    put_record(db, attributes={"ce-id": "x", "subject": "orders/ord-1"})  # not as eventkit publishes it
    records = Records(db)

    found = records.of_subject("orders/ord-1")

    assert [r["id"] for r in found] == [newer, older]
    assert [r["status"] for r in found] == ["new", "replayed"]
    assert found[0]["event_type"] == "shop.order.confirmed.v1"
    assert "payload" not in found[0]  # summaries, like a listing
    assert len(records.of_subject("orders/ord-1", limit=1)) == 2  # one more than the limit: there are more
    assert records.of_subject("orders/ord-2") == []


def test_a_replay_once_is_refused_the_second_time_and_a_failed_publish_undoes_the_claim(
    db: Any, clean_stack: dict[str, Any]
) -> None:
    project = clean_stack["project"]
    topic, _ = replay_target(project)
    records = Records(db)
    record_id = put_record(db, topic=topic)

    done = replay(records, project, records.get(record_id), once=True)
    with pytest.raises(ReplayError, match="replayed already"):
        replay(records, project, records.get(record_id), once=True)
    assert done.topic == topic
    assert db.collection(FAILURES_COLLECTION).document(record_id).get().get("replays") == 1

    lost = put_record(db, topic=f"projects/{project}/topics/no-such-topic")
    with pytest.raises(RetryableError, match="Topic not found"):
        replay(records, project, records.get(lost), once=True)
    assert db.collection(FAILURES_COLLECTION).document(lost).get().get("status") == "new"
