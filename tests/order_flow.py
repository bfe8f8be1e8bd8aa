"""Placing a real order on the local stack and waiting for the end of its flow, for the console's order tests."""

from __future__ import annotations

from typing import Any

import requests
from waiting import wait_for

FINAL = ("CONFIRMED", "CANCELLED")
# An order that is confirmed: its flow's deliveries, by consumer and event type (the path the console draws).
CONFIRMED_FLOW = {
    ("inventory", "shop.order.placed.v1"),
    ("payments", "shop.order.placed.v1"),
    ("order-saga", "shop.inventory.reserved.v1"),
    ("order-saga", "shop.payment.authorized.v1"),
    ("inventory", "shop.order.confirmed.v1"),
    ("notifications", "shop.order.confirmed.v1"),
}


def stock_mug(db: Any, available: int = 10) -> None:
    db.collection("products").document("MUG-1").set(
        {"name": "Mug", "price": 1200, "currency": "EUR", "available": available, "reserved": 0}
    )


def place_order(stack: dict[str, Any], quantity: int = 2) -> str:
    body = {
        "customer_id": "cust-7",
        "email": "ana@example.com",
        "items": [{"sku": "MUG-1", "quantity": quantity}],
        "payment_token": "tok_ok",
        "currency": "EUR",
    }
    response = requests.post(f"{stack['services']['orders']}/orders", json=body, timeout=60)
    assert response.status_code == 201, response.text
    return str(response.json()["order_id"])


def wait_for_flow(db: Any, order_id: str, expected: set[tuple[str, str]], seconds: float = 30) -> None:
    """Until the order is final and every expected delivery of its flow has completed in the ledger."""
    from eventkit.processed import hops_of

    def done() -> bool:
        order = db.collection("orders").document(order_id).get()
        if not order.exists or order.get("status") not in FINAL:
            return False
        seen = {(hop.consumer, hop.event_type) for hop in hops_of(db, f"orders/{order_id}") if hop.at is not None}
        return expected <= seen

    wait_for(done, seconds, f"order {order_id}'s flow completed")
