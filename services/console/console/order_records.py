"""Reading orders for the console: a page of recent orders by status, one order, and the deliveries of its flow.

The ``orders`` collection is the orders service's (services/orders/orders/order_store.py writes it); the console
only reads it, never through the orders service's code (services import eventkit, not each other). The hops come
from the idempotency ledger through :mod:`eventkit.processed`, the failure records of the flow through
:mod:`eventkit.failure_records`: both found by the subject every event of the order carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventkit.failure_records import Records
from eventkit.newest_first import CursorNotFound, newest_first_page
from eventkit.processed import Hop, hops_of

ORDERS = "orders"
STATUSES = ("PENDING", "CONFIRMED", "CANCELLED")
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
        """One page of orders, newest first (the composite index ``status`` + ``created_at`` in
        terraform/firestore.tf; every status: ``created_at`` alone). ``after``: the last id of the page before."""
        try:
            orders, next_after = newest_first_page(
                self.db.collection(self.collection), fields=SUMMARY_FIELDS, by="created_at", status=status,
                limit=limit, after=after,
            )  # fmt: skip
        except CursorNotFound:
            raise OrderNotFound(f"no order {after!r} to continue the listing after") from None
        return OrderPage(orders=orders, next_after=next_after)

    def get(self, order_id: str) -> dict[str, Any]:
        snapshot = self.db.collection(self.collection).document(order_id).get()
        if not snapshot.exists:
            raise OrderNotFound(f"no order {order_id!r}")
        return {"id": snapshot.id, **snapshot.to_dict()}

    def hops(self, order_id: str) -> list[Hop]:
        return hops_of(self.db, subject_of(order_id))

    def failures(self, order_id: str, limit: int) -> list[dict[str, Any]]:
        """Summaries of the failure records (dead letters, permanent failures) of the order's flow, most recent
        first; at most ``limit`` + 1 (more than ``limit``: the list was cut)."""
        return Records(self.db).of_subject(subject_of(order_id), limit)
