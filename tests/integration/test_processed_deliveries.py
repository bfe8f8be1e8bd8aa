"""What the runtime notes of each processed delivery, against the Firestore emulator, through a real consumer's
entry point: the note under the event's subject is written once (with the ledger entry, or after a leased side
effect), a duplicate adds none; an order's hops come back in the order they completed; deliveries are counted per
subscription and window (each instance on its own shard), and read back from a window on."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from eventkit import Consumer, DomainEvent, HandlerContext
from eventkit.catalog import CATALOG, ORDER_CONFIRMED, ORDER_PLACED
from eventkit.delivery_counts import COUNTS_COLLECTION, DeliveryCounts, count_id
from eventkit.delivery_note import window_of
from eventkit.events import encode_for_pubsub, new_event
from eventkit.processed import hops_of, processed_since
from eventkit.trace import TraceContext

TRACE = TraceContext.new()
SUB = "projects/shop-test/subscriptions/"
ORDER = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 100}],
    "total": 100,
    "currency": "EUR",
}


def _consumer(project: str, name: str) -> Consumer:
    consumer = Consumer(name, environ={"GOOGLE_CLOUD_PROJECT": project})

    @consumer.on(ORDER_PLACED)
    def placed(event: DomainEvent, ctx: HandlerContext) -> None:
        ctx.transaction.set(ctx.db.collection("effects").document(event.id), {"done": True})

    @consumer.on(ORDER_CONFIRMED, exactly_once=False)
    def confirmed(event: DomainEvent, ctx: HandlerContext) -> None:
        with ctx.side_effect_once() as run:
            assert isinstance(run, bool)

    return consumer


def _event(event_type: str, data: dict[str, Any], subject: str = "orders/o-1") -> DomainEvent:
    return new_event(CATALOG, event_type, data, source="test", subject=subject, traceparent=TRACE.child().traceparent)


def _push(consumer: Consumer, event: DomainEvent, subscription: str) -> str:
    data, attributes = encode_for_pubsub(event)
    body = {
        "message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": uuid.uuid4().hex},
        "subscription": SUB + subscription,
    }
    builder = EnvironBuilder(method="POST", path="/", data=json.dumps(body), content_type="application/json")
    answer, status, _ = consumer.handle(Request(builder.get_environ()))
    assert status == 200, answer
    return json.loads(answer)["status"]


def test_a_processed_delivery_is_noted_once_under_its_subject(db: Any, clean_stack: dict[str, Any]) -> None:
    consumer = _consumer(clean_stack["project"], "inventory")
    placed = _event(ORDER_PLACED, ORDER)

    statuses = [_push(consumer, placed, "inventory-order-events") for _ in range(2)]
    hops = hops_of(db, "orders/o-1")

    assert statuses == ["processed", "duplicate"]
    assert [(h.consumer, h.event_type, h.trace_id, h.subscription) for h in hops] == [
        ("inventory", ORDER_PLACED, TRACE.trace_id, SUB + "inventory-order-events")
    ]


def test_a_leased_side_effect_is_noted_after_it_completed_and_a_duplicate_adds_none(
    db: Any, clean_stack: dict[str, Any]
) -> None:
    consumer = _consumer(clean_stack["project"], "notifications")
    confirmed = _event(ORDER_CONFIRMED, {k: ORDER[k] for k in ("order_id", "customer_id", "total", "currency")})

    statuses = [_push(consumer, confirmed, "notifications-order-events") for _ in range(2)]

    assert statuses == ["processed", "duplicate"]
    assert [(h.consumer, h.event_type) for h in hops_of(db, "orders/o-1")] == [("notifications", ORDER_CONFIRMED)]


def test_a_route_that_keeps_no_notes_writes_none(db: Any, clean_stack: dict[str, Any]) -> None:
    consumer = Consumer("quiet", environ={"GOOGLE_CLOUD_PROJECT": clean_stack["project"]})
    consumer.on(ORDER_PLACED, noted=False)(lambda event, ctx: None)

    status = _push(consumer, _event(ORDER_PLACED, ORDER), "inventory-order-events")

    assert status == "processed"
    assert hops_of(db, "orders/o-1") == []


def test_an_orders_hops_come_back_in_the_order_they_completed_and_no_other_orders(
    db: Any, clean_stack: dict[str, Any]
) -> None:
    inventory, payments = (_consumer(clean_stack["project"], name) for name in ("inventory", "payments"))
    _push(inventory, _event(ORDER_PLACED, ORDER), "inventory-order-events")
    _push(payments, _event(ORDER_PLACED, {**ORDER, "order_id": "o-2"}, subject="orders/o-2"), "payments-order-events")
    _push(payments, _event(ORDER_PLACED, ORDER), "payments-order-events")

    hops = hops_of(db, "orders/o-1")

    assert [h.consumer for h in hops] == ["inventory", "payments"]
    assert hops[0].at < hops[1].at


def test_deliveries_are_counted_per_subscription_and_read_from_a_window_on(
    db: Any, clean_stack: dict[str, Any]
) -> None:
    inventory = _consumer(clean_stack["project"], "inventory")
    for i in range(3):
        _push(inventory, _event(ORDER_PLACED, {**ORDER, "order_id": f"o-{i}"}), "inventory-order-events")
    _push(inventory, _event(ORDER_PLACED, {**ORDER, "order_id": "o-0"}), "inventory-order-events")  # a new event
    old = window_of(datetime.now(UTC) - timedelta(hours=3))
    db.collection(COUNTS_COLLECTION).document(count_id(SUB + "payments-order-events", old, 0)).set(
        {"subscription": SUB + "payments-order-events", "window": old, "count": 40}
    )

    counts = processed_since(
        db, [SUB + "inventory-order-events", SUB + "payments-order-events"], datetime.now(UTC) - timedelta(hours=1)
    )
    since_old = processed_since(db, [SUB + "payments-order-events"], old)

    assert counts == {SUB + "inventory-order-events": 4, SUB + "payments-order-events": 0}
    assert since_old == {SUB + "payments-order-events": 40}


def test_each_instance_counts_on_its_own_shard_and_the_reading_adds_them_up(
    db: Any, clean_stack: dict[str, Any]
) -> None:
    path = SUB + "inventory-order-events"
    instances = [DeliveryCounts(db, shard=shard) for shard in (3, 11)]
    for instance, deliveries in zip(instances, (5, 2), strict=True):
        for _ in range(deliveries):
            instance.add(path)
        assert instance.flush() == deliveries

    counters = {snapshot.id: snapshot.get("window") for snapshot in db.collection(COUNTS_COLLECTION).stream()}
    shards = {int(doc_id.rsplit("#", 1)[1]): doc_id for doc_id in counters}
    assert sorted(shards) == [3, 11]
    assert all(doc_id == count_id(path, counters[doc_id], shard) for shard, doc_id in shards.items())
    assert processed_since(db, [path], datetime.now(UTC) - timedelta(hours=1)) == {path: 7}
