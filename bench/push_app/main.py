"""The functions the push-path benchmark serves (``bench/push_path.py``), each a functions-framework target.

- (``bare.py``: the baseline, a function that returns at once;)
- ``plain``: the eventkit runtime without idempotency (``exactly_once=False``, the handler does nothing);
- ``once``: the ledger transaction on Firestore (``exactly_once=True``, the handler writes one document);
- ``full``: ``once`` plus one event emitted through the outbox and published after the commit.

Every eventkit consumer reads the delivery, validates the event against the catalog, logs a structured line and
answers JSON, as the services do.
"""

from __future__ import annotations

from typing import Any

from eventkit import Consumer, DomainEvent, HandlerContext

EVENT_TYPE = "shop.order.placed.v1"
EMITTED_TYPE = "shop.order.confirmed.v1"
TOPIC = "bench-events"
COLLECTION = "bench-effects"

plain_consumer = Consumer("bench-plain")
once_consumer = Consumer("bench-once")
full_consumer = Consumer("bench-full", topics=[TOPIC])


@plain_consumer.on(EVENT_TYPE, exactly_once=False)
def do_nothing(event: DomainEvent, ctx: HandlerContext) -> None:
    return None


@once_consumer.on(EVENT_TYPE)
def write_one(event: DomainEvent, ctx: HandlerContext) -> None:
    ctx.transaction.set(ctx.db.collection(COLLECTION).document(event.id), {"order_id": event.data.order_id})


@full_consumer.on(EVENT_TYPE)
def write_and_emit(event: DomainEvent, ctx: HandlerContext) -> None:
    data = event.data
    ctx.transaction.set(ctx.db.collection(COLLECTION).document(event.id), {"order_id": data.order_id})
    confirmed = {"order_id": data.order_id, "customer_id": data.customer_id, "total": data.total, "currency": "EUR"}
    ctx.emit(TOPIC, EMITTED_TYPE, confirmed, subject=f"orders/{data.order_id}")


def plain(request: Any) -> Any:
    return plain_consumer.handle(request)


def once(request: Any) -> Any:
    return once_consumer.handle(request)


def full(request: Any) -> Any:
    return full_consumer.handle(request)
