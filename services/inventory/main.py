"""inventory: reserves stock for each placed order, exactly once.

Flow: read the delivery (eventkit) → read stock in the ledger transaction → decide (reservation.py) → write the
stock levels, the reservation and the ledger entry in that one transaction. A redelivered or replayed
``OrderPlaced`` finds its ledger entry and changes nothing.
"""

from __future__ import annotations

from typing import Any

from reservation import StockLevel, after_reservation, decide, wanted_per_sku

from eventkit import Consumer, DomainEvent, HandlerContext
from eventkit.catalog import ORDER_PLACED, OrderPlaced

PRODUCTS = "products"
RESERVATIONS = "reservations"

consumer = Consumer("inventory")


@consumer.on(ORDER_PLACED)
def reserve_stock(event: DomainEvent, ctx: HandlerContext) -> None:
    order: OrderPlaced = event.data  # type: ignore[assignment]
    db, tx = ctx.db, ctx.transaction
    reservation_ref = db.collection(RESERVATIONS).document(order.order_id)
    if reservation_ref.get(transaction=tx).exists:
        return  # the same order under another event id: already decided

    wanted = wanted_per_sku((line.sku, line.quantity) for line in order.items)
    refs = {sku: db.collection(PRODUCTS).document(sku) for sku in wanted}
    stock = {snapshot.id: _level(snapshot) for snapshot in tx.get_all(list(refs.values()))}
    decision = decide(wanted, stock)

    for sku, quantity in decision.quantities.items():
        level = after_reservation(stock[sku], quantity)  # type: ignore[arg-type]
        tx.update(refs[sku], {"available": level.available, "reserved": level.reserved})
    tx.set(
        reservation_ref,
        {
            "order_id": order.order_id,
            "status": "RESERVED" if decision.accepted else "REJECTED",
            "reason": decision.reason,
            "items": [{"sku": sku, "quantity": quantity} for sku, quantity in sorted(wanted.items())],
            "event_id": event.id,
        },
    )


def _level(snapshot: Any) -> StockLevel | None:
    if not snapshot.exists:
        return None
    doc = snapshot.to_dict()
    return StockLevel(available=int(doc.get("available", 0)), reserved=int(doc.get("reserved", 0)))


def handle_event(request: Any) -> tuple[str, int, dict[str, str]]:
    """functions-framework target (signature type http): every delivery form goes through eventkit."""
    return consumer.handle(request)
