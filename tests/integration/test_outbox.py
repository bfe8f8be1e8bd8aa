"""The transactional outbox against the real emulators: staged with the write, published after, swept if left."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore, pubsub_v1
from push_request import push_request
from waiting import wait_for

from eventkit import Consumer, DomainEvent, HandlerContext
from eventkit.catalog import CATALOG
from eventkit.catalog.orders import INVENTORY_RESERVED, ORDER_PLACED
from eventkit.errors import RetryableError
from eventkit.events import encode_for_pubsub, new_event
from eventkit.outbox import OUTBOX_SHARDS, Outbox, SweepResult
from eventkit.publish import send as publish_send

RESERVED = {"order_id": "o-1", "items": [{"sku": "MUG-1", "quantity": 1}]}
ORDER = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "items": [{"sku": "MUG-1", "quantity": 1, "unit_price": 100}],
    "total": 100,
    "currency": "EUR",
}


def _topic_path(project: str) -> str:
    return f"projects/{project}/topics/t-{uuid.uuid4().hex[:10]}"


def _create_topic_with_pull(topic_path: str) -> str:
    pubsub_v1.PublisherClient().create_topic(name=topic_path)
    subscription = topic_path.replace("/topics/", "/subscriptions/") + "-pull"
    pubsub_v1.SubscriberClient().create_subscription(name=subscription, topic=topic_path)
    return subscription


def _pull_ids(subscription: str) -> list[str]:
    response = pubsub_v1.SubscriberClient().pull(subscription=subscription, max_messages=10, timeout=10)
    return [dict(m.message.attributes)["ce-id"] for m in response.received_messages]


def _stage(db: Any, outbox: Outbox, topic_path: str) -> str:
    event = new_event(CATALOG, INVENTORY_RESERVED, RESERVED, source="//tests")

    @firestore.transactional
    def write(transaction: Any) -> str:
        transaction.set(db.collection("state").document("x"), {"v": 1})
        return outbox.add(transaction, topic_path, event, cause="tests/1").event_id

    return write(db.transaction())


def _recording_outbox(db: Any) -> tuple[Outbox, list[str]]:
    """An outbox with 4 shards in a collection of its own (the stack's sweeper, every 5 s on `outbox`, must not take
    its entries first), and the ce-ids it publishes, in order."""
    sent: list[str] = []

    def recording_send(topic: str, data: bytes, attributes: dict[str, str], **options: Any) -> str:
        sent.append(attributes["ce-id"])
        return publish_send(topic, data, attributes, **options)

    return Outbox(db, collection=f"outbox-{uuid.uuid4().hex[:8]}", send=recording_send, shards=4), sent


def test_staged_event_is_published_after_the_commit_and_marked_sent(db: Any, clean_stack: dict[str, Any]) -> None:
    topic_path = _topic_path(clean_stack["project"])
    subscription = _create_topic_with_pull(topic_path)
    outbox = Outbox(db)

    event_id = _stage(db, outbox, topic_path)
    published = outbox.publish([event_id])

    assert published == 1
    assert _pull_ids(subscription) == [event_id]
    entry = db.collection("outbox").document(event_id).get().to_dict()
    assert entry["sent"] is True and entry["message_id"]
    assert outbox.publish([event_id]) == 0  # already sent: never again


def test_entry_left_unsent_is_published_by_the_sweeper(db: Any, clean_stack: dict[str, Any]) -> None:
    topic_path = _topic_path(clean_stack["project"])  # not created yet: publishing fails
    outbox = Outbox(db, publish_timeout=5)
    event_id = _stage(db, outbox, topic_path)
    with pytest.raises(RetryableError):
        outbox.publish([event_id])
    assert db.collection("outbox").document(event_id).get().get("sent") is False

    subscription = _create_topic_with_pull(topic_path)
    result = outbox.sweep(older_than=timedelta(seconds=0))

    assert (result.published, result.failed) == (1, 0)
    assert _pull_ids(subscription) == [event_id]


def test_the_sweeper_asks_every_shard_and_publishes_the_oldest_first(db: Any, clean_stack: dict[str, Any]) -> None:
    """Entries spread over shards (so no index range takes every growing created_at); the sweep still finds them
    all, oldest first across the shards, ``limit`` at a time. A collection of its own: the stack's sweeper, which
    runs every 5 s on `outbox`, must not take them first."""
    topic_path = _topic_path(clean_stack["project"])
    subscription = _create_topic_with_pull(topic_path)
    outbox, sent = _recording_outbox(db)
    collection = outbox.collection
    ids = [_stage(db, outbox, topic_path) for _ in range(6)]
    assert {db.collection(collection).document(i).get().get("shard") for i in ids} <= {0, 1, 2, 3}
    oldest = datetime.now(UTC) - timedelta(minutes=5)
    for age_rank, event_id in enumerate(ids):  # oldest in shard 3, then 2, 1, 0, 3, 2: every shard has a turn
        update = {"shard": 3 - age_rank % 4, "created_at": oldest + timedelta(seconds=age_rank)}
        db.collection(collection).document(event_id).update(update)

    assert outbox.sweep(older_than=timedelta(0), limit=4) == SweepResult(4, 0)
    assert sent == ids[:4]
    assert outbox.sweep(older_than=timedelta(0), limit=4) == SweepResult(2, 0)
    assert sent == ids
    assert outbox.sweep(older_than=timedelta(0), limit=4) == SweepResult(0, 0)  # all marked sent
    received = wait_for(lambda: (got := set(_pull_ids(subscription))) >= set(ids) and got, 30, "all six published")
    assert received == set(ids)


def test_the_sweeper_finds_entries_written_before_entries_had_a_shard(db: Any, clean_stack: dict[str, Any]) -> None:
    """An upgrade while entries were unsent (Pub/Sub down, say): those have no shard, and are published all the same,
    in age order with the sharded ones."""
    topic_path = _topic_path(clean_stack["project"])
    subscription = _create_topic_with_pull(topic_path)
    outbox, sent = _recording_outbox(db)
    collection = outbox.collection
    ids = [_stage(db, outbox, topic_path) for _ in range(4)]
    oldest = datetime.now(UTC) - timedelta(minutes=5)
    for age_rank, event_id in enumerate(ids):
        update: dict[str, Any] = {"created_at": oldest + timedelta(seconds=age_rank)}
        if age_rank % 2 == 0:
            update["shard"] = firestore.DELETE_FIELD  # as the earlier release wrote them
        db.collection(collection).document(event_id).update(update)
    fresh = _stage(db, outbox, topic_path)  # just committed, its own request publishes it: not the sweeper's yet
    db.collection(collection).document(fresh).update({"shard": firestore.DELETE_FIELD})

    assert outbox.sweep(older_than=timedelta(seconds=30)) == SweepResult(4, 0)
    assert sent == ids
    assert outbox.sweep(older_than=timedelta(seconds=30)) == SweepResult(0, 0)
    received = wait_for(lambda: (got := set(_pull_ids(subscription))) >= set(ids) and got, 30, "all four published")
    assert received == set(ids)


def test_staged_entries_land_in_random_shards(db: Any) -> None:
    outbox = Outbox(db, collection=f"outbox-{uuid.uuid4().hex[:8]}")
    shards = {
        db.collection(outbox.collection).document(_stage(db, outbox, "projects/p/topics/unused")).get().get("shard")
        for _ in range(40)
    }
    assert shards <= set(range(OUTBOX_SHARDS)) and len(shards) > 4  # 40 draws from 16: almost surely 10+


def _emitting_consumer(project: str, topic_id: str) -> Consumer:
    """A consumer that answers each OrderPlaced by emitting one InventoryReserved to ``topic_id``."""
    consumer = Consumer(
        f"test-{uuid.uuid4().hex[:6]}",
        topics=["order-events"],
        environ={"GOOGLE_CLOUD_PROJECT": project, "TOPIC_ORDER_EVENTS": topic_id},
    )

    @consumer.on(ORDER_PLACED)
    def react(event: DomainEvent, ctx: HandlerContext) -> None:
        ctx.emit("order-events", INVENTORY_RESERVED, RESERVED)

    return consumer


def _push_body(event: Any, message_id: str) -> dict[str, Any]:
    data, attributes = encode_for_pubsub(event)
    return {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": message_id}}


def test_redelivered_cause_flushes_what_its_first_run_left_unsent(db: Any, clean_stack: dict[str, Any]) -> None:
    project = clean_stack["project"]
    topic_id = f"t-{uuid.uuid4().hex[:10]}"
    consumer = _emitting_consumer(project, topic_id)
    body = _push_body(new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests"), "m1")
    with push_request(body) as request:
        first = consumer.handle(request)
    assert first[1] == 503  # committed, but the topic does not exist yet: not published

    subscription = _create_topic_with_pull(f"projects/{project}/topics/{topic_id}")
    with push_request(body) as request:
        second = consumer.handle(request)

    assert second[1] == 200 and '"duplicate"' in second[0]
    assert len(_pull_ids(subscription)) == 1


def test_just_committed_event_is_published_without_reading_it_back(db: Any, clean_stack: dict[str, Any]) -> None:
    topic_path = _topic_path(clean_stack["project"])
    subscription = _create_topic_with_pull(topic_path)
    outbox = Outbox(db)
    event = new_event(CATALOG, INVENTORY_RESERVED, RESERVED, source="//tests")

    @firestore.transactional
    def write(transaction: Any) -> Any:
        return outbox.add(transaction, topic_path, event, cause="tests/2")

    staged = write(db.transaction())
    published = outbox.publish_committed([staged])

    assert (published, staged.event_id) == (1, event.id)
    assert _pull_ids(subscription) == [event.id]
    assert db.collection("outbox").document(event.id).get().get("sent") is True


def _stage_many(db: Any, outbox: Outbox, topic_path: str, count: int) -> list[Any]:
    events = [new_event(CATALOG, INVENTORY_RESERVED, RESERVED, source="//tests") for _ in range(count)]

    @firestore.transactional
    def write(transaction: Any) -> Any:
        return [outbox.add(transaction, topic_path, event, cause="tests/3") for event in events]

    return write(db.transaction())


def _sent(db: Any, staged: list[Any]) -> list[Any]:
    return [db.collection("outbox").document(entry.event_id).get() for entry in staged]


def test_a_request_publishing_alone_writes_its_marks_itself(db: Any, clean_stack: dict[str, Any]) -> None:
    topic_path = _topic_path(clean_stack["project"])
    _create_topic_with_pull(topic_path)
    outbox = Outbox(db, batch_marks=lambda: False)  # no other request in flight
    staged = _stage_many(db, outbox, topic_path, 2)

    assert outbox.publish_committed(staged) == 2

    # No batch to wait for: on Cloud Run the CPU may be gone once the response is out.
    assert all(snapshot.get("sent") for snapshot in _sent(db, staged))
    assert outbox.sent_marks is not None and outbox.sent_marks._thread is None


def test_marks_of_concurrent_requests_are_batched_and_written_soon(db: Any, clean_stack: dict[str, Any]) -> None:
    topic_path = _topic_path(clean_stack["project"])
    subscription = _create_topic_with_pull(topic_path)
    outbox = Outbox(db, batch_marks=lambda: True)  # another request is in flight
    staged = _stage_many(db, outbox, topic_path, 5)

    assert outbox.publish_committed(staged) == 5

    assert sorted(_pull_ids(subscription)) == sorted(entry.event_id for entry in staged)
    assert outbox.sent_marks is not None and outbox.sent_marks._thread is not None  # queued, not written inline
    marked = wait_for(
        lambda: (snapshots := _sent(db, staged)) and all(s.get("sent") for s in snapshots) and snapshots,
        5,
        "all five marked sent by the background writer",
    )
    assert all(snapshot.get("message_id") and snapshot.get("expires_at") for snapshot in marked)


def test_a_batch_of_marks_survives_a_missing_entry_and_flushes_past_the_commit_limit(db: Any) -> None:
    outbox = Outbox(db, batch_marks=lambda: True)
    marks = outbox.sent_marks
    assert marks is not None
    ids = [f"mark-{uuid.uuid4().hex}" for _ in range(520)]  # more than one commit's 500 writes
    batch = db.batch()
    for event_id in ids[:499]:
        batch.set(db.collection("outbox").document(event_id), {"sent": False})
    batch.commit()
    for event_id in ids[499:]:
        db.collection("outbox").document(event_id).set({"sent": False})
    missing = f"mark-{uuid.uuid4().hex}"  # e.g. removed meanwhile: the others must still be marked

    with marks._wake:  # queue without waking the writer, then flush here
        marks._pending.extend((event_id, "m", datetime.now(UTC)) for event_id in [*ids, missing])
    assert marks.flush() == 521

    assert all(db.collection("outbox").document(event_id).get().get("sent") for event_id in ids)


def test_a_delivery_that_publishes_writes_one_log_line_carrying_the_message_ids(
    db: Any, clean_stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    project = clean_stack["project"]
    topic_id = f"t-{uuid.uuid4().hex[:10]}"
    subscription = _create_topic_with_pull(f"projects/{project}/topics/{topic_id}")
    consumer = _emitting_consumer(project, topic_id)
    order = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests")
    body = _push_body(order, "m2")
    capsys.readouterr()
    with push_request(body) as request:
        assert consumer.handle(request)[1] == 200

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    info = [line for line in lines if line["severity"] == "INFO" and line.get("event_id") == order.id]
    assert [line["message"] for line in info] == ["processed"]  # one line per delivery, no "published" line
    [emitted_id] = _pull_ids(subscription)
    assert list(info[0]["published_messages"]) == [emitted_id]
    assert info[0]["published_messages"][emitted_id]  # the Pub/Sub message id


def test_requests_in_flight_together_batch_their_marks_and_the_last_one_out_writes_them(
    clean_stack: dict[str, Any],
) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from google.cloud.firestore_v1.base_query import FieldFilter

    from eventkit.catalog.orders import ORDER_CONFIRMED

    project = clean_stack["project"]
    topic_path = _topic_path(project)
    _create_topic_with_pull(topic_path)
    environ = {"GOOGLE_CLOUD_PROJECT": project, "TOPIC_ORDER_EVENTS": topic_path.rsplit("/", 1)[1]}
    consumer = Consumer(f"marks-{uuid.uuid4().hex[:6]}", topics=["order-events"], environ=environ)
    assert consumer.outbox.sent_marks is not None
    consumer.outbox.sent_marks.delay = 60.0  # the background writer would wait a minute for company
    both_in_flight = threading.Barrier(2)

    @consumer.on(ORDER_PLACED)
    def confirm(event: DomainEvent, ctx: HandlerContext) -> None:
        both_in_flight.wait(10)  # two requests in flight: each one's mark may join a batch
        order_id = event.data.order_id  # type: ignore[attr-defined]
        ctx.emit(
            "order-events", ORDER_CONFIRMED, {"order_id": order_id, "customer_id": "c", "total": 1, "currency": "EUR"}
        )

    def deliver(n: int) -> dict[str, Any]:
        event = new_event(CATALOG, ORDER_PLACED, {**ORDER, "order_id": f"o-{n}"}, source="//tests")
        with push_request(_push_body(event, f"m{n}")) as request:
            return json.loads(consumer.handle(request)[0])

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(deliver, range(2)))

    assert [a["status"] for a in answers] == ["processed", "processed"]
    causes = [f"{consumer.name}/{a['key']}" for a in answers]
    entries = list(consumer.db.collection("outbox").where(filter=FieldFilter("cause", "in", causes)).stream())
    # Both answered, and both marks are written already: none waited for the background writer's minute.
    assert len(entries) == 2 and all(entry.get("sent") for entry in entries)
    assert consumer.outbox.sent_marks.pending == 0
