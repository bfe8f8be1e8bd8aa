"""Orders in Firestore: placing an order (order + outbox event + idempotency key, one atomic commit), reading.

Collections: ``products/{sku}`` (the catalog: name, price, currency, available, reserved), ``orders/{order_id}``,
``order_requests/{sha256(Idempotency-Key)}`` (which order a key created, and the request's fingerprint).

A product with ``stock_shards: N`` keeps its stock in ``products/{sku}/stock_shards/{0..N-1}`` instead (inventory
writes it: services/inventory/inventory/stock_shards.py); what it has available is the sum over them.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventkit import Service, StagedEvent
from eventkit.catalog.orders import ORDER_PLACED
from orders.order_request import OrderRequest
from orders.pricing import Product, price_order

PRODUCTS = "products"
ORDERS = "orders"
ORDER_REQUESTS = "order_requests"
ORDER_TOPIC = "order-events"
# Inventory's layout of a sharded product (inventory/stock_shards.py): the field naming how many shards, and their
# collection under the product.
SHARDS_FIELD = "stock_shards"
STOCK_SHARDS = "stock_shards"


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was used before with a different request body."""


@dataclass(frozen=True)
class Placed:
    order: dict[str, Any]
    replayed: bool  # True when the Idempotency-Key had already placed this order
    staged: StagedEvent | None  # the OrderPlaced this request committed, to publish after the commit


def product_from(snapshot: Any, available: int | None = None) -> Product | None:
    """``available``: a sharded product's sum over its shards (its own document holds none)."""
    if not snapshot.exists:
        return None
    doc = snapshot.to_dict()
    return Product(
        sku=snapshot.id,
        name=doc.get("name", snapshot.id),
        price=int(doc["price"]),
        currency=doc.get("currency", "EUR"),
        available=int(doc.get("available", 0)) if available is None else available,
    )


def place_order(service: Service, request: OrderRequest, idempotency_key: str | None) -> Placed:
    """Write the order and its OrderPlaced event atomically; the caller publishes the event after the commit.

    Two round trips and no transaction: one read of the Idempotency-Key's record and the products, then one
    atomic commit of the order, its outbox entry and the key's record, created only if absent. Pricing needs
    no lock on the products (inventory, which writes them, decides availability), so placing an order never
    holds up a reservation. A request that lost a race for the same key finds the winner's order.
    """
    from google.api_core.exceptions import AlreadyExists

    db, fingerprint = service.db, request.fingerprint()
    key_ref = (
        db.collection(ORDER_REQUESTS).document(hashlib.sha256(idempotency_key.encode()).hexdigest())
        if idempotency_key
        else None
    )
    product_refs = [db.collection(PRODUCTS).document(line.sku) for line in request.items]
    snapshots = {s.reference.path: s for s in db.get_all(([key_ref] if key_ref else []) + product_refs)}
    if key_ref is not None:
        replayed = _replay(db, snapshots[key_ref.path], fingerprint, idempotency_key)
        if replayed is not None:
            return replayed

    catalog = {ref.id: product_from(snapshots[ref.path]) for ref in product_refs}
    priced = price_order([(line.sku, line.quantity) for line in request.items], catalog, request.currency)
    order_id, now = uuid.uuid4().hex, datetime.now(UTC)
    items = [{"sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price} for line in priced.lines]
    event = service.event(
        ORDER_PLACED,
        {
            "order_id": order_id,
            "customer_id": request.customer_id,
            "email": request.email,
            "items": items,
            "total": priced.total,
            "currency": request.currency,
            "payment_token": request.payment_token,
        },
        subject=f"orders/{order_id}",
    )
    order = {
        "order_id": order_id,
        "status": "PENDING",
        "reason": None,
        "customer_id": request.customer_id,
        "email": request.email,
        "items": items,
        "total": priced.total,
        "currency": request.currency,
        "inventory": "PENDING",
        "payment": "PENDING",
        "created_at": now,
        "updated_at": now,
        "trace_id": event.trace_id,  # the trace every hop of this order's flow carries (the console shows it)
        "timeline": [{"type": ORDER_PLACED, "at": now, "event_id": event.id}],
    }
    batch = db.batch()
    batch.create(db.collection(ORDERS).document(order_id), order)
    staged = service.stage(batch, ORDER_TOPIC, event, cause=f"orders/{order_id}")
    if key_ref is not None:
        batch.create(key_ref, {"fingerprint": fingerprint, "order_id": order_id, "created_at": now})
    try:
        batch.commit()  # all or nothing: with the key's record taken, no order and no event either
    except AlreadyExists:
        if key_ref is None or (replayed := _replay(db, key_ref.get(), fingerprint, idempotency_key)) is None:
            raise
        return replayed
    return Placed(order, replayed=False, staged=staged)


def _replay(db: Any, key_record: Any, fingerprint: str, idempotency_key: str | None) -> Placed | None:
    """The order an Idempotency-Key already placed, if it did; raises if that was for another request body."""
    if not key_record.exists:
        return None
    if key_record.get("fingerprint") != fingerprint:
        raise IdempotencyKeyReused(idempotency_key)
    existing = db.collection(ORDERS).document(key_record.get("order_id")).get()
    return Placed(existing.to_dict(), replayed=True, staged=None)


def get_order(db: Any, order_id: str) -> dict[str, Any] | None:
    snapshot = db.collection(ORDERS).document(order_id).get()
    return snapshot.to_dict() if snapshot.exists else None


def list_products(db: Any) -> list[Product]:
    snapshots = list(db.collection(PRODUCTS).order_by("__name__").stream())
    totals = _sharded_available(db, snapshots)
    products = (product_from(snapshot, totals.get(snapshot.id)) for snapshot in snapshots)
    return [product for product in products if product is not None]


def _sharded_available(db: Any, snapshots: list[Any]) -> dict[str, int]:
    """Sharded products' available stock, summed over their shards (one read of all of them)."""
    sharded = {
        snapshot.id: shards
        for snapshot in snapshots
        if isinstance(shards := (snapshot.to_dict() or {}).get(SHARDS_FIELD), int) and shards > 1
    }
    refs = [
        db.collection(PRODUCTS).document(sku).collection(STOCK_SHARDS).document(str(index))
        for sku, shards in sharded.items()
        for index in range(shards)
    ]
    totals = dict.fromkeys(sharded, 0)
    for shard in db.get_all(refs) if refs else ():
        sku = shard.reference.parent.parent.id
        totals[sku] = totals.get(sku, 0) + (int((shard.to_dict() or {}).get("available", 0)) if shard.exists else 0)
    return totals
