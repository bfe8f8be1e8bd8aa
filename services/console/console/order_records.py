"""Reading orders for the console: a page of recent orders by status, one order, and the deliveries of its flow.

The ``orders`` collection is the orders service's (services/orders/orders/order_store.py writes it); the console
only reads it, never through the orders service's code (services import eventkit, not each other). The hops come
from the idempotency ledger through :mod:`eventkit.processed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventkit.processed import Hop, hops_of

ORDERS = "orders"
STATUSES = ("PENDING", "CONFIRMED", "CANCELLED")
MAX_PAGE = 200
# What a listing shows: not the items, the timeline or the email.
SUMMARY_FIELDS = ("order_id", "status", "reason", "customer_id", "total", "currency", "created_at", "updated_at")


class OrderNotFound(Exception):
    pass


@dataclass(frozen=True)
class OrderPage:
    orders: list[dict[str, Any]]  # summaries (SUMMARY_FIELDS and ``id``), newest first
    next_after: str | None  # the id to pass as ``after`` for the next page; None on the last page


def subject_of(order_id: str) -> str:
    """The CloudEvent subject every event of an order's flow carries."""
    return f"{ORDERS}/{order_id}"


class Orders:
    def __init__(self, db: Any, collection: str = ORDERS) -> None:
        self.db = db
        self.collection = collection

    def page(self, *, status: str | None = None, limit: int = 50, after: str | None = None) -> OrderPage:
        """One page of orders, newest first: ``where(status == S).order_by(created_at DESC)`` with a cursor (the
        composite index ``status`` + ``created_at`` in terraform/firestore.tf); every status: ``created_at``
        alone. ``after``: the last id of the page before."""
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        limit = max(1, min(limit, MAX_PAGE))
        collection = self.db.collection(self.collection)
        query = collection.select(list(SUMMARY_FIELDS))
        if status:
            query = query.where(filter=FieldFilter("status", "==", status))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING)
        if after:
            cursor = collection.document(after).get(["created_at"])
            if not cursor.exists:
                raise OrderNotFound(f"no order {after!r} to continue the listing after")
            query = query.start_after(cursor)
        found = [{"id": s.id, **s.to_dict()} for s in query.limit(limit + 1).stream()]
        more = len(found) > limit
        return OrderPage(orders=found[:limit], next_after=found[limit - 1]["id"] if more else None)

    def get(self, order_id: str) -> dict[str, Any]:
        snapshot = self.db.collection(self.collection).document(order_id).get()
        if not snapshot.exists:
            raise OrderNotFound(f"no order {order_id!r}")
        return {"id": snapshot.id, **snapshot.to_dict()}

    def hops(self, order_id: str) -> list[Hop]:
        return hops_of(self.db, subject_of(order_id))
