"""The saga consumer's handlers: read the order in the ledger transaction, apply saga.py, write, emit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eventkit import DomainEvent, HandlerContext, PermanentError
from eventkit.catalog.orders import ORDER_CANCELLED, ORDER_CONFIRMED
from orders.order_store import ORDER_TOPIC, ORDERS
from orders.saga import OUTCOMES, SagaState, apply


def order_document(event: DomainEvent) -> list[str]:
    """The document every outcome of an order reads and then writes (Consumer.on(serialize_on=...))."""
    return [f"{ORDERS}/{event.data.order_id}"]  # type: ignore[attr-defined]


def on_outcome(event: DomainEvent, ctx: HandlerContext) -> None:
    from google.cloud import firestore

    data = event.data
    order_id: str = data.order_id  # type: ignore[attr-defined]
    ref = ctx.db.collection(ORDERS).document(order_id)
    snapshot = ctx.get(ref)
    if not snapshot.exists:
        # The order is committed before its OrderPlaced is published, so this outcome is for no order of ours.
        raise PermanentError(f"{event.type} for unknown order {order_id!r}", reason="unknown_order")
    order = snapshot.to_dict()
    state = SagaState(
        order["status"], order.get("inventory", "PENDING"), order.get("payment", "PENDING"), order.get("reason")
    )
    transition = apply(state, event.type, _failure_detail(event))

    now = datetime.now(UTC)
    new = transition.state
    ctx.transaction.update(
        ref,
        {
            "status": new.status,
            "inventory": new.inventory,
            "payment": new.payment,
            "reason": new.reason,
            "updated_at": now,
            "timeline": firestore.ArrayUnion([{"type": event.type, "at": now, "event_id": event.id}]),
        },
    )
    if transition.emit is not None:
        common = {key: order[key] for key in ("order_id", "customer_id", "email", "total", "currency")}
        payload = {**common, "reason": new.reason} if transition.emit == ORDER_CANCELLED else common
        assert transition.emit in (ORDER_CONFIRMED, ORDER_CANCELLED)
        ctx.emit(ORDER_TOPIC, transition.emit, payload, subject=f"orders/{order_id}")


def _failure_detail(event: DomainEvent) -> str:
    data: Any = event.data
    reason = getattr(data, "reason", None)
    if reason is None:
        return ""
    detail = getattr(data, "detail", "") or ""
    side = "inventory" if event.type.startswith("shop.inventory.") else "payment"
    return f"{side} {reason}" + (f": {detail}" if detail else "")


HANDLED = tuple(OUTCOMES)
