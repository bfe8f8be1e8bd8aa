"""Consumer.on(serialize_on=...) on the Firestore emulator: deliveries that read and write one shared document
queue in the instance instead of colliding in Firestore (where each collision costs a lock timeout and a retry)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from firestore_calls import record_firestore_calls
from push_request import push_request

from eventkit import Consumer, DomainEvent, HandlerContext
from eventkit.catalog import CATALOG, ORDER_PLACED
from eventkit.events import encode_for_pubsub, new_event

DELIVERIES = 6


def _order(n: int) -> dict[str, Any]:
    items = [{"sku": "HOT-1", "quantity": 1, "unit_price": 100}]
    return {"order_id": f"o-{n}", "customer_id": "c-1", "items": items, "total": 100, "currency": "EUR"}


def _deliver(consumer: Consumer, n: int) -> dict[str, Any]:
    return _deliver_event(consumer, new_event(CATALOG, ORDER_PLACED, _order(n), source="//tests"))


def _deliver_event(consumer: Consumer, event: Any) -> dict[str, Any]:
    data, attributes = encode_for_pubsub(event)
    envelope = {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": event.id}}
    with push_request(envelope) as request:
        body, status, _ = consumer.handle(request)
    assert status == 200, body
    return json.loads(body)


@pytest.mark.parametrize("serialized", [True, False])
def test_concurrent_deliveries_on_one_document_all_count_and_serialized_ones_never_retry(
    clean_stack: dict[str, Any], db: Any, serialized: bool
) -> None:
    consumer = Consumer(f"test-{uuid.uuid4().hex[:8]}", environ={"GOOGLE_CLOUD_PROJECT": clean_stack["project"]})
    counter = db.collection("hot-test").document(uuid.uuid4().hex)
    counter.set({"reserved": 0})
    attempts, guard = [0], threading.Lock()

    def documents(event: DomainEvent) -> list[str]:
        return [f"products/{line.sku}" for line in event.data.items]  # type: ignore[attr-defined]

    @consumer.on(ORDER_PLACED, serialize_on=documents if serialized else None)
    def reserve(event: DomainEvent, ctx: HandlerContext) -> None:
        with guard:
            attempts[0] += 1
        reserved = counter.get(transaction=ctx.transaction).get("reserved")
        ctx.transaction.update(counter, {"reserved": reserved + 1})

    with ThreadPoolExecutor(DELIVERIES) as pool:
        answers = list(pool.map(lambda n: _deliver(consumer, n), range(DELIVERIES)))

    assert [a["status"] for a in answers] == ["processed"] * DELIVERIES
    assert counter.get().get("reserved") == DELIVERIES  # exactly once each, either way
    if serialized:
        assert attempts[0] == DELIVERIES  # one transaction attempt each: no collision, no retry


def test_serialize_on_documents_come_with_the_ledger_entry_in_one_round_trip(
    clean_stack: dict[str, Any], db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = Consumer(f"test-{uuid.uuid4().hex[:8]}", environ={"GOOGLE_CLOUD_PROJECT": clean_stack["project"]})
    hot, other = (db.collection("hot-test").document(uuid.uuid4().hex) for _ in range(2))
    hot.set({"reserved": 0})
    other.set({"name": "not named by serialize_on"})
    seen: list[list[Any]] = []

    @consumer.on(ORDER_PLACED, serialize_on=lambda event: [hot.path])
    def reserve(event: DomainEvent, ctx: HandlerContext) -> None:
        reserved = ctx.get(hot).get("reserved")
        if event.data.order_id == "o-1":  # type: ignore[attr-defined]
            seen.append([s.to_dict() for s in ctx.get_all([other, hot])])  # one named, one not: one read more
        ctx.transaction.update(hot, {"reserved": reserved + 1})

    calls = record_firestore_calls(consumer.db, monkeypatch)

    def reads() -> list[tuple[str, ...]]:
        return [call.documents for call in calls if call.method == "batch_get_documents"]

    assert _deliver(consumer, 0)["status"] == "processed"
    assert len(reads()) == 1 and reads()[0][1:] == (hot.path,)  # the ledger entry first, the named document with it

    calls.clear()
    assert _deliver(consumer, 1)["status"] == "processed"
    assert [r[1:] for r in reads()] == [(hot.path,), ()] and reads()[1] == (other.path,)  # only the unnamed one
    assert seen == [[{"name": "not named by serialize_on"}, {"reserved": 1}]]  # in the order asked for
    assert hot.get().get("reserved") == 2


def test_named_documents_are_read_again_when_a_colliding_transaction_retries(
    clean_stack: dict[str, Any], db: Any
) -> None:
    """Two instances (their own locks) on one document collide in Firestore; every retried attempt must see the
    other's commit, or an increment is lost."""
    counter = db.collection("hot-test").document(uuid.uuid4().hex)
    counter.set({"reserved": 0})
    instances = [
        Consumer(f"test-{uuid.uuid4().hex[:8]}", environ={"GOOGLE_CLOUD_PROJECT": clean_stack["project"]})
        for _ in range(2)
    ]
    for consumer in instances:

        @consumer.on(ORDER_PLACED, serialize_on=lambda event: [counter.path])
        def reserve(event: DomainEvent, ctx: HandlerContext) -> None:
            ctx.transaction.update(counter, {"reserved": ctx.get(counter).get("reserved") + 1})

    with ThreadPoolExecutor(DELIVERIES) as pool:
        answers = list(pool.map(lambda n: _deliver(instances[n % 2], n), range(DELIVERIES)))

    assert [a["status"] for a in answers] == ["processed"] * DELIVERIES
    assert counter.get().get("reserved") == DELIVERIES


def test_duplicates_arriving_together_queue_in_the_instance_and_apply_one_effect(
    clean_stack: dict[str, Any], db: Any
) -> None:
    """Ten deliveries of ONE event at once: the delivery's lock (its ledger key) queues them here, so one runs
    and nine find its entry, without colliding in Firestore (no transaction attempt is repeated)."""
    consumer = Consumer(f"test-{uuid.uuid4().hex[:8]}", environ={"GOOGLE_CLOUD_PROJECT": clean_stack["project"]})
    counter = db.collection("hot-test").document(uuid.uuid4().hex)
    counter.set({"reserved": 0})
    attempts, guard = [0], threading.Lock()

    @consumer.on(ORDER_PLACED)
    def reserve(event: DomainEvent, ctx: HandlerContext) -> None:
        with guard:
            attempts[0] += 1
        ctx.transaction.update(counter, {"reserved": ctx.get(counter).get("reserved") + 1})

    event = new_event(CATALOG, ORDER_PLACED, _order(0), source="//tests")
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: _deliver_event(consumer, event), range(10)))

    assert sorted(a["status"] for a in answers) == ["duplicate"] * 9 + ["processed"]
    assert counter.get().get("reserved") == 1
    assert attempts[0] == 1  # the nine duplicates never began a transaction that wrote
