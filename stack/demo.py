"""``python -m stack demo``: place three orders on the running local stack and follow each to its end.

One that succeeds, one out of stock, one whose payment is declined. Each goes: orders API → Firestore (order +
outbox) → Pub/Sub push → inventory and payments → the saga → CONFIRMED or CANCELLED (with compensation) →
notifications (mail in .local/mail/). Prints the final status, the reason and the time each took.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from stack.errors import StackError
from stack.state import read_info

WAIT_SECONDS = 20.0
CASES = (
    ("in stock, paid", {"sku": "MUG-1", "quantity": 1}, "tok_visa"),
    ("out of stock", {"sku": "LAMP-1", "quantity": 5}, "tok_visa"),
    ("payment declined", {"sku": "TEE-M", "quantity": 1}, "tok_declined"),
)


def run_demo(state_dir: Path) -> int:
    info = read_info(state_dir)
    if info is None:
        raise StackError(f"no stack recorded in {state_dir}: start one with `make up` first")
    api = info.services["orders"]

    placed = []
    for label, line, token in CASES:
        body = {
            "customer_id": "demo-customer",
            "email": "demo@example.com",
            "items": [line],
            "payment_token": token,
            "currency": "EUR",
        }
        started = time.monotonic()
        response = requests.post(f"{api}/orders", json=body, timeout=30)
        if response.status_code != 201:
            raise StackError(f"placing the {label!r} order failed: {response.status_code} {response.text}")
        placed.append((label, response.json()["order_id"], started))
        print(f"placed {label:<17} order {response.json()['order_id']} (total {response.json()['total']})")

    failures = 0
    for label, order_id, started in placed:
        order = _follow(api, order_id)
        elapsed = time.monotonic() - started
        status = order["status"] if order else "PENDING"
        reason = f" — {order['reason']}" if order and order.get("reason") else ""
        print(f"{label:<17} → {status:<9} in {elapsed:5.2f} s{reason}")
        failures += status == "PENDING"
    print(f"mail sent to the local SMTP sink: {info.emulators.get('mailpit') or info.mail_dir}")
    if failures:
        raise StackError(f"{failures} order(s) still PENDING after {WAIT_SECONDS:.0f} s; see {info.logs}")
    return 0


def _follow(api: str, order_id: str) -> dict | None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        order = requests.get(f"{api}/orders/{order_id}", timeout=10).json()
        if order["status"] != "PENDING":
            return order
        time.sleep(0.1)
    return None
