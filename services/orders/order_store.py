"""Orders in Firestore: placing an order (order + outbox event + idempotency key, one transaction), reading.

Collections: ``products/{sku}`` (the catalog: name, price, currency, available, reserved), ``orders/{order_id}``,
``order_requests/{sha256(Idempotency-Key)}`` (which order a key created, and the request's fingerprint).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from order_request import OrderRequest
from pricing import Product, price_order

from eventkit.catalog.orders import ORDER_PLACED
from eventkit.outbox import Outbox, StagedEvent
from eventkit.publish import Publisher
from eventkit.transactions import run_transaction

PRODUCTS = "products"
ORDERS = "orders"
ORDER_REQUESTS = "order_requests"
ORDER_TOPIC = "order-events"


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was used before with a different request body."""


@dataclass(frozen=True)
class Placed:
    order: dict[str, Any]
    replayed: bool  # True when the Idempotency-Key had already placed this order
    staged: StagedEvent | None  # the OrderPlaced this request committed, to publish after the commit


def product_from(snapshot: Any) -> Product | None:
    if not snapshot.exists:
        return None
    doc = snapshot.to_dict()
    return Product(
        sku=snapshot.id,
        name=doc.get("name", snapshot.id),
        price=int(doc["price"]),
        currency=doc.get("currency", "EUR"),
        available=int(doc.get("available", 0)),
    )


def place_order(
    db: Any, outbox: Outbox, publisher: Publisher, request: OrderRequest, idempotency_key: str | None
) -> Placed:
    """Write the order and its OrderPlaced event atomically; the caller publishes the event after the commit."""
    from google.cloud import firestore

    fingerprint = request.fingerprint()
    key_ref = (
        db.collection(ORDER_REQUESTS).document(hashlib.sha256(idempotency_key.encode()).hexdigest())
        if idempotency_key
        else None
    )
    order_id = uuid.uuid4().hex

    @firestore.transactional
    def attempt(transaction: Any) -> Placed:
        if key_ref is not None:
            seen = key_ref.get(transaction=transaction)
            if seen.exists:
                if seen.get("fingerprint") != fingerprint:
                    raise IdempotencyKeyReused(idempotency_key)
                existing = db.collection(ORDERS).document(seen.get("order_id")).get(transaction=transaction)
                return Placed(existing.to_dict(), replayed=True, staged=None)

        refs = [db.collection(PRODUCTS).document(line.sku) for line in request.items]
        catalog = {snapshot.id: product_from(snapshot) for snapshot in transaction.get_all(refs)}
        priced = price_order([(line.sku, line.quantity) for line in request.items], catalog, request.currency)

        now = datetime.now(UTC)
        items = [{"sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price} for line in priced.lines]
        event = publisher.event(
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
            "timeline": [{"type": ORDER_PLACED, "at": now, "event_id": event.id}],
        }
        transaction.create(db.collection(ORDERS).document(order_id), order)
        staged = outbox.add(transaction, publisher.config.topic_path(ORDER_TOPIC), event, cause=f"orders/{order_id}")
        if key_ref is not None:
            transaction.create(key_ref, {"fingerprint": fingerprint, "order_id": order_id, "created_at": now})
        return Placed(order, replayed=False, staged=staged)

    return run_transaction(db, attempt, f"order {order_id}")


def get_order(db: Any, order_id: str) -> dict[str, Any] | None:
    snapshot = db.collection(ORDERS).document(order_id).get()
    return snapshot.to_dict() if snapshot.exists else None


def list_products(db: Any) -> list[Product]:
    products = (product_from(snapshot) for snapshot in db.collection(PRODUCTS).order_by("__name__").stream())
    return [product for product in products if product is not None]
