"""inventory: reserves stock for each placed order and releases it when the order is cancelled, exactly once.

Flow: read the delivery (eventkit) → read the order's reservation and the stock in the ledger transaction →
decide (inventory/reservation.py) → write the stock levels, the reservation, the outgoing event (outbox) and the ledger
entry in that one transaction. A redelivered or replayed event finds its ledger entry and changes nothing.

- ``OrderPlaced``: reserve every line or none → ``InventoryReserved`` | ``InventoryRejected``
  (``out_of_stock`` / ``unknown_sku``, naming the SKUs). If the order was already cancelled (tombstone):
  reserve nothing → ``InventoryRejected(order_cancelled)``.
- ``OrderCancelled``: RESERVED → release the stock → ``InventoryReleased``; no reservation yet → write the
  tombstone (no event); rejected or released already → nothing.
- ``OrderConfirmed``: RESERVED → the reserved stock is sold (``reserved`` down, ``sold`` up), so
  ``available + reserved + sold`` per SKU never changes except by restocking.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eventkit import Consumer, DomainEvent, HandlerContext
from eventkit.catalog import (
    INVENTORY_REJECTED,
    INVENTORY_RELEASED,
    INVENTORY_RESERVED,
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    ORDER_PLACED,
    OrderCancelled,
    OrderPlaced,
)
from inventory.reservation import (
    REASON_ORDER_CANCELLED,
    CancelledAction,
    PlacedAction,
    ReservationStatus,
    StockLevel,
    after_release,
    after_reservation,
    after_sale,
    decide,
    on_cancelled,
    on_confirmed,
    on_placed,
    wanted_per_sku,
)

PRODUCTS = "products"
RESERVATIONS = "reservations"
BUS = "order-events"

consumer = Consumer("inventory", topics=[BUS])


def _placed_documents(event: DomainEvent) -> list[str]:
    """The documents a reservation reads and then writes: each product's stock, and the order's reservation."""
    order: OrderPlaced = event.data  # type: ignore[assignment]
    return [f"{PRODUCTS}/{line.sku}" for line in order.items] + [f"{RESERVATIONS}/{order.order_id}"]


def _reserved_documents(event: DomainEvent) -> list[str]:
    """The same for a cancellation or a sale: the products come from the reservation (read here, outside the
    transaction, only to choose the locks; the transaction reads it again)."""
    order_id: str = event.data.order_id  # type: ignore[attr-defined]
    snapshot = consumer.db.collection(RESERVATIONS).document(order_id).get()
    skus = [line["sku"] for line in snapshot.get("items") or []] if snapshot.exists else []
    return [f"{PRODUCTS}/{sku}" for sku in skus] + [f"{RESERVATIONS}/{order_id}"]


# Every handler reads and writes shared stock documents: deliveries touching the same ones queue in this
# instance (serialize_on) instead of colliding in Firestore.
@consumer.on(ORDER_PLACED, serialize_on=_placed_documents)
def reserve_stock(event: DomainEvent, ctx: HandlerContext) -> None:
    order: OrderPlaced = event.data  # type: ignore[assignment]
    db, tx = ctx.db, ctx.transaction
    reservation_ref = db.collection(RESERVATIONS).document(order.order_id)
    snapshot = ctx.get(reservation_ref)
    action = on_placed(_status(snapshot))
    if action is PlacedAction.NOTHING:
        return  # the same order under another event id: already decided and answered
    if action is PlacedAction.REJECT_CANCELLED:
        tx.update(reservation_ref, {"placed_event_id": event.id, "updated_at": datetime.now(UTC)})
        _emit(
            ctx, order.order_id, INVENTORY_REJECTED, {"reason": REASON_ORDER_CANCELLED, "detail": "order was cancelled"}
        )
        return

    wanted = wanted_per_sku((line.sku, line.quantity) for line in order.items)
    refs = {sku: db.collection(PRODUCTS).document(sku) for sku in wanted}
    stock = {snapshot.id: _level(snapshot) for snapshot in ctx.get_all(refs.values())}
    decision = decide(wanted, stock)

    for sku, quantity in decision.quantities.items():
        level = after_reservation(stock[sku], quantity)  # type: ignore[arg-type]
        tx.update(refs[sku], {"available": level.available, "reserved": level.reserved})
    items = [{"sku": sku, "quantity": quantity} for sku, quantity in sorted(wanted.items())]
    tx.set(
        reservation_ref,
        {
            "order_id": order.order_id,
            "status": (ReservationStatus.RESERVED if decision.accepted else ReservationStatus.REJECTED).value,
            "reason": decision.reason,
            "items": items,
            "event_id": event.id,
            "updated_at": datetime.now(UTC),
        },
    )
    if decision.accepted:
        _emit(ctx, order.order_id, INVENTORY_RESERVED, {"items": items})
    else:
        rejection = {"reason": decision.rejection, "skus": decision.rejected_skus, "detail": decision.reason}
        _emit(ctx, order.order_id, INVENTORY_REJECTED, rejection)


@consumer.on(ORDER_CANCELLED, serialize_on=_reserved_documents)
def release_stock(event: DomainEvent, ctx: HandlerContext) -> None:
    cancelled: OrderCancelled = event.data  # type: ignore[assignment]
    db, tx = ctx.db, ctx.transaction
    reservation_ref = db.collection(RESERVATIONS).document(cancelled.order_id)
    snapshot = ctx.get(reservation_ref)
    action = on_cancelled(_status(snapshot))
    now = datetime.now(UTC)
    if action is CancelledAction.NOTHING:
        return
    if action is CancelledAction.TOMBSTONE:
        tx.set(
            reservation_ref,
            {
                "order_id": cancelled.order_id,
                "status": ReservationStatus.CANCELLED.value,
                "reason": cancelled.reason,
                "items": [],
                "cancel_event_id": event.id,
                "updated_at": now,
            },
        )
        return

    items = {line["sku"]: int(line["quantity"]) for line in snapshot.get("items")}
    refs = {sku: db.collection(PRODUCTS).document(sku) for sku in items}
    stock = {product.id: _level(product) for product in ctx.get_all(refs.values())}
    for sku, quantity in items.items():
        level = after_release(stock[sku] or StockLevel(available=0), quantity)
        tx.set(refs[sku], {"available": level.available, "reserved": level.reserved}, merge=True)
    tx.update(
        reservation_ref,
        {
            "status": ReservationStatus.RELEASED.value,
            "cancel_event_id": event.id,
            "released_at": now,
            "updated_at": now,
        },
    )
    released = [{"sku": sku, "quantity": quantity} for sku, quantity in sorted(items.items())]
    _emit(ctx, cancelled.order_id, INVENTORY_RELEASED, {"items": released})


@consumer.on(ORDER_CONFIRMED, serialize_on=_reserved_documents)
def sell_stock(event: DomainEvent, ctx: HandlerContext) -> None:
    order_id: str = event.data.order_id  # type: ignore[attr-defined]
    db, tx = ctx.db, ctx.transaction
    reservation_ref = db.collection(RESERVATIONS).document(order_id)
    snapshot = ctx.get(reservation_ref)
    if not on_confirmed(_status(snapshot)):
        return
    items = {line["sku"]: int(line["quantity"]) for line in snapshot.get("items")}
    refs = {sku: db.collection(PRODUCTS).document(sku) for sku in items}
    products = {product.id: product.to_dict() or {} for product in ctx.get_all(refs.values())}
    for sku, quantity in items.items():
        current = products.get(sku, {})
        reserved, sold = after_sale(int(current.get("reserved", 0)), int(current.get("sold", 0)), quantity)
        tx.set(refs[sku], {"reserved": reserved, "sold": sold}, merge=True)
    now = datetime.now(UTC)
    tx.update(reservation_ref, {"status": ReservationStatus.SOLD.value, "sold_at": now, "updated_at": now})


def _emit(ctx: HandlerContext, order_id: str, event_type: str, data: dict[str, Any]) -> None:
    ctx.emit(BUS, event_type, {"order_id": order_id, **data}, subject=f"orders/{order_id}")


def _status(snapshot: Any) -> ReservationStatus | None:
    return ReservationStatus(snapshot.get("status")) if snapshot.exists else None


def _level(snapshot: Any) -> StockLevel | None:
    if not snapshot.exists:
        return None
    doc = snapshot.to_dict()
    return StockLevel(available=int(doc.get("available", 0)), reserved=int(doc.get("reserved", 0)))


def handle_event(request: Any) -> tuple[str, int, dict[str, str]]:
    """functions-framework target (signature type http): every delivery form goes through eventkit."""
    return consumer.handle(request)
