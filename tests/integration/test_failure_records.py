"""Failure records on the Firestore emulator, as the recorders write them and the console and `python -m dlq` read
and change them: pages in order with a cursor, what waits counted per subscription (counters every writer keeps
true, and a recount), and a claim that exactly one of many rivals wins."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from console_support import order_dead_letter, put_record, replay_target
from google.cloud.firestore_v1.base_query import FieldFilter

from deadletters import dead_letter_store
from deadletters.dead_letter import read_dead_letter
from eventkit import waiting_counts
from eventkit.errors import RetryableError
from eventkit.failure_records import NotNew, RecordNotFound, Records
from eventkit.failures import FAILURES_COLLECTION, FailedDelivery, FailureRecorder
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


def _truly_waiting(db: Any) -> dict[tuple[str | None, str], int]:
    """The records with status new, counted one by one: what the counters must say."""
    counted: Counter[tuple[str | None, str]] = Counter()
    for snapshot in db.collection(FAILURES_COLLECTION).where(filter=FieldFilter("status", "==", "new")).stream():
        counted[(snapshot.get("subscription"), snapshot.get("kind"))] += 1
    return dict(counted)


def _dead_letter(project: str, subscription: str, event_id: str, message_id: str) -> Any:
    attributes = {"ce-id": event_id, "ce-type": "shop.test.v1", "CloudPubSubDeadLetterSourceSubscription": subscription}
    message = {"messageId": message_id, "attributes": attributes, "data": base64.b64encode(b"{}").decode()}
    body = json.dumps({"message": message, "subscription": f"projects/{project}/subscriptions/deadletters-x"})
    return read_dead_letter(body.encode(), project)


def test_every_writer_keeps_the_waiting_counters_true(db: Any, clean_stack: dict[str, Any]) -> None:
    project = clean_stack["project"]
    a, b = (f"projects/{project}/subscriptions/{name}" for name in ("sub-a", "sub-b"))
    recorder, records = FailureRecorder(db), Records(db)

    def poison(message_id: str, subscription: str | None = a) -> FailedDelivery:
        return FailedDelivery(
            consumer="orders", reason="malformed_event", error="not JSON", body=b"{", headers={},
            subscription=subscription, message_id=message_id,
        )  # fmt: skip

    def expect(**waiting: int) -> None:
        keys = {"a_failure": (a, "permanent_failure"), "a_dead": (a, "dead_letter"), "b_dead": (b, "dead_letter"),
                "none_failure": (None, "permanent_failure")}  # fmt: skip
        wanted = {keys[name]: n for name, n in waiting.items() if n}
        assert _truly_waiting(db) == wanted
        assert {key: n for key, n in waiting_counts.read(db).items() if n} == wanted
        assert records.waiting([a, b]).total == sum(wanted.values())

    first = recorder.record(poison("m-1"))
    recorder.record(poison("m-1"))  # the same poison message again: one record, counted once
    recorder.record(poison("m-2", subscription=None))
    expect(a_failure=1, none_failure=1)

    letter = _dead_letter(project, "sub-b", "evt-1", "dl-1")
    assert dead_letter_store.record(db, letter, None) == dead_letter_store.RECORDED
    assert dead_letter_store.record(db, letter, None) == dead_letter_store.DUPLICATE  # redelivered to the recorder
    dead = letter.record_id
    expect(a_failure=1, none_failure=1, b_dead=1)

    records.claim(first, "discarded")
    records.claim(dead, "replayed")
    expect(none_failure=1)
    records.release(dead)  # the replay could not be sent
    expect(none_failure=1, b_dead=1)
    records.mark_replayed(dead, "r-1")  # the CLI's `replay ID`: no claim first
    expect(none_failure=1)

    again = _dead_letter(project, "sub-b", "evt-1", "dl-2")  # the replay was dead-lettered too
    assert dead_letter_store.record(db, again, None) == dead_letter_store.DEAD_LETTERED_AGAIN
    recorder.record(poison("m-1"))  # the discarded poison message delivered once more
    expect(a_failure=1, none_failure=1, b_dead=1)

    with db.transaction() as transaction:  # a delivery that filed part of itself as a failure
        recorder.record_in(transaction, poison("m-3"))
    expect(a_failure=2, none_failure=1, b_dead=1)


def test_a_storm_of_failures_and_claims_leaves_the_counters_true(db: Any, clean_stack: dict[str, Any]) -> None:
    subscription = f"projects/{clean_stack['project']}/subscriptions/sub-a"
    recorder, records = FailureRecorder(db), Records(db)
    ids = [put_record(db, subscription=subscription) for _ in range(12)]

    def record(n: int) -> None:
        failure = FailedDelivery(
            consumer="orders", reason="malformed_event", error="not JSON", body=b"{", headers={},
            subscription=subscription, message_id=f"m-{n % 10}",
        )  # fmt: skip
        recorder.record(failure)

    def claim(record_id: str) -> None:
        with contextlib.suppress(NotNew):
            records.claim(record_id, "discarded")

    with ThreadPoolExecutor(max_workers=8) as pool:
        done = [pool.submit(record, n) for n in range(30)] + [pool.submit(claim, i) for i in ids + ids[:6]]
        for future in done:
            future.result(timeout=120)

    assert _truly_waiting(db) == {(subscription, "permanent_failure"): 10}
    assert records.waiting([subscription]).by_subscription == {
        (subscription, "permanent_failure"): 10, (subscription, "dead_letter"): 0,
    }  # fmt: skip


def test_a_storm_of_dead_letters_of_one_event_is_one_record_counting_each_message_once(
    db: Any, clean_stack: dict[str, Any]
) -> None:
    """Ten dead-letter messages of one event, each delivered to the recorder three times, from 4 threads at once:
    every write reads the one record first, so they contend. A write that still aborts after its backoff budget
    raises RetryableError (the recorder answers 503) and is delivered again, as Pub/Sub would: at the end each
    message is counted once, whatever was retried (an aborted write leaves nothing behind)."""
    project = clean_stack["project"]
    letters = [_dead_letter(project, "sub-b", "evt-storm", f"dl-{n}") for n in range(10)]

    def deliver(letter: Any) -> str:
        for _ in range(5):
            with contextlib.suppress(RetryableError):
                return dead_letter_store.record(db, letter, None)
        raise AssertionError(f"{letter.message.message_id}: not recorded in 5 deliveries")

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = Counter(pool.map(deliver, letters * 3, timeout=600))

    assert outcomes == {
        dead_letter_store.RECORDED: 1, dead_letter_store.DEAD_LETTERED_AGAIN: 9, dead_letter_store.DUPLICATE: 20,
    }  # fmt: skip
    stored = db.collection(FAILURES_COLLECTION).document(letters[0].record_id).get().to_dict()
    assert stored["count"] == 10 and stored["status"] == "new"
    assert sorted(stored["message_ids"]) == sorted(f"dl-{n}" for n in range(10))
    subscription = f"projects/{project}/subscriptions/sub-b"
    assert _truly_waiting(db) == {(subscription, "dead_letter"): 1}
    assert {key: n for key, n in waiting_counts.read(db).items() if n} == {(subscription, "dead_letter"): 1}


def test_recount_sets_the_counters_to_the_records_themselves(db: Any, clean_stack: dict[str, Any]) -> None:
    subscription = f"projects/{clean_stack['project']}/subscriptions/sub-a"
    counted = put_record(db, subscription=subscription)
    for record_id in ("r-1", "r-2"):  # written by hand, behind the counters' back
        db.collection(FAILURES_COLLECTION).document(record_id).set(
            {"kind": "dead_letter", "status": "new", "subscription": subscription}
        )
    db.collection(FAILURES_COLLECTION).document(counted).delete()
    records = Records(db)
    assert records.waiting([subscription]).total == 1

    assert records.recount() == {(subscription, "dead_letter"): 2}

    assert records.waiting([subscription]).by_subscription[(subscription, "dead_letter")] == 2
    assert len(list(db.collection(waiting_counts.WAITING_COLLECTION).stream())) == 1


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
    older = order_dead_letter(db, project, "ord-1", status="replayed", last_seen=start)  # every status is found
    newer = order_dead_letter(db, project, "ord-1", last_seen=start + timedelta(minutes=1))
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
