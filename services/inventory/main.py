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

A hot product's stock may be split into shards (``stock_shards`` on the product; inventory/stock_shards.py):
an order then reserves from the shards it asks in turn, and the reservation records what it took from each, so
a release or a sale touches exactly those.
"""

from __future__ import annotations

import threading
import time
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
from inventory.stock_shards import probe_order, shard_count, shard_path, take

PRODUCTS = "products"
RESERVATIONS = "reservations"
BUS = "order-events"

SHARD_COUNT_TTL_SECONDS = 30.0  # how long this instance trusts a product's shard count when choosing a lock

consumer = Consumer("inventory", topics=[BUS])
_shard_counts: dict[str, tuple[int, float]] = {}  # sku -> (shards, read at): only to choose which document to lock
_shard_counts_guard = threading.Lock()


def _placed_documents(event: DomainEvent) -> list[str]:
    """The documents a reservation reads and then writes: each product's stock (a sharded product's: the first
    shard this order asks), and the order's reservation."""
    order: OrderPlaced = event.data  # type: ignore[assignment]
    counts = _known_shard_counts([line.sku for line in order.items])
    stock = [
        shard_path(line.sku, probe_order(order.order_id, line.sku, counts[line.sku])[0])
        if counts[line.sku] > 1
        else f"{PRODUCTS}/{line.sku}"
        for line in order.items
    ]
    return [*stock, f"{RESERVATIONS}/{order.order_id}"]


def _reserved_documents(event: DomainEvent) -> list[str]:
    """The same for a cancellation or a sale: the stock documents come from the reservation (read here, outside
    the transaction, only to choose the locks; the transaction reads it again)."""
    order_id: str = event.data.order_id  # type: ignore[attr-defined]
    snapshot = consumer.db.collection(RESERVATIONS).document(order_id).get()
    reservation = snapshot.to_dict() if snapshot.exists else {}
    return [*_parts(reservation or {}), f"{RESERVATIONS}/{order_id}"]


def _known_shard_counts(skus: list[str]) -> dict[str, int]:
    """Each product's shard count, read at most every SHARD_COUNT_TTL_SECONDS per instance. Only the choice of a
    lock depends on it: the transaction reads the product again and takes from the shards it names."""
    now = time.monotonic()
    with _shard_counts_guard:
        counts = {
            sku: n for sku, (n, at) in _shard_counts.items() if sku in skus and now - at < SHARD_COUNT_TTL_SECONDS
        }
    missing = [sku for sku in dict.fromkeys(skus) if sku not in counts]
    if missing:
        refs = [consumer.db.collection(PRODUCTS).document(sku) for sku in missing]
        read = {snapshot.id: shard_count(snapshot.to_dict()) for snapshot in consumer.db.get_all(refs)}
        with _shard_counts_guard:
            for sku in missing:
                counts[sku] = read.get(sku, 1)
                _shard_counts[sku] = (counts[sku], now)
    return counts


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
    products = {snapshot.id: snapshot for snapshot in ctx.get_all(refs.values())}
    stock: dict[str, StockLevel | None] = {}
    shard_plans: dict[str, dict[int, int]] = {}  # sharded SKUs: shard -> quantity to take from it
    shard_levels: dict[str, dict[int, StockLevel]] = {}
    for sku, quantity in wanted.items():
        shards = shard_count(products[sku].to_dict()) if products[sku].exists else 1
        if shards == 1:
            stock[sku] = _level(products[sku])
            continue
        levels, shard_plans[sku] = _take_from_shards(ctx, order.order_id, sku, shards, quantity)
        shard_levels[sku] = levels
        stock[sku] = StockLevel(available=sum(level.available for level in levels.values()))
    decision = decide(wanted, stock)

    for sku, quantity in decision.quantities.items():
        if sku in shard_plans:
            for index, part in shard_plans[sku].items():
                level = after_reservation(shard_levels[sku][index], part)
                shard_ref = db.document(shard_path(sku, index))
                tx.set(shard_ref, {"available": level.available, "reserved": level.reserved}, merge=True)
            continue
        level = after_reservation(stock[sku], quantity)  # type: ignore[arg-type]
        tx.update(refs[sku], {"available": level.available, "reserved": level.reserved})
    items = [{"sku": sku, "quantity": quantity} for sku, quantity in sorted(wanted.items())]
    taken = {sku: {str(i): part for i, part in plan.items()} for sku, plan in shard_plans.items()}
    tx.set(
        reservation_ref,
        {
            "order_id": order.order_id,
            "status": (ReservationStatus.RESERVED if decision.accepted else ReservationStatus.REJECTED).value,
            "reason": decision.reason,
            "items": items,
            "shards": taken if decision.accepted else {},
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
    parts = _parts(snapshot.to_dict() or {})
    refs = [db.document(path) for path in parts]
    stock = {ref.path: _level(current) for ref, current in zip(refs, ctx.get_all(refs), strict=True)}
    for ref in refs:
        level = after_release(stock[ref.path] or StockLevel(available=0), parts[ref.path])
        tx.set(ref, {"available": level.available, "reserved": level.reserved}, merge=True)
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
    parts = _parts(snapshot.to_dict() or {})
    refs = [db.document(path) for path in parts]
    for ref, current in zip(refs, ctx.get_all(refs), strict=True):
        level = current.to_dict() or {}
        reserved, sold = after_sale(int(level.get("reserved", 0)), int(level.get("sold", 0)), parts[ref.path])
        tx.set(ref, {"reserved": reserved, "sold": sold}, merge=True)
    now = datetime.now(UTC)
    tx.update(reservation_ref, {"status": ReservationStatus.SOLD.value, "sold_at": now, "updated_at": now})


def _take_from_shards(
    ctx: HandlerContext, order_id: str, sku: str, shards: int, quantity: int
) -> tuple[dict[int, StockLevel], dict[int, int]]:
    """Read the order's shards in its probe order, one at a time, until they cover ``quantity`` (or all are
    read): their levels, and what to take from each."""
    levels: dict[int, StockLevel] = {}
    covered = 0
    for index in probe_order(order_id, sku, shards):
        if covered >= quantity:
            break
        level = _level(ctx.get(ctx.db.document(shard_path(sku, index)))) or StockLevel(available=0)
        levels[index] = level
        covered += max(level.available, 0)
    plan, _ = take(quantity, ((index, level.available) for index, level in levels.items()))
    return levels, plan


def _parts(reservation: dict[str, Any]) -> dict[str, int]:
    """Stock document path -> the quantity this reservation holds there."""
    shards = reservation.get("shards") or {}
    parts: dict[str, int] = {}
    for line in reservation.get("items") or []:
        sku = line["sku"]
        if sku in shards:
            parts |= {shard_path(sku, int(index)): int(part) for index, part in shards[sku].items()}
        else:
            parts[f"{PRODUCTS}/{sku}"] = int(line["quantity"])
    return parts


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
