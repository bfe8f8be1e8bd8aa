"""``python -m stack demo``: watch an event travel through the running local stack.

Seeds a product, publishes an ``OrderPlaced`` CloudEvent to the order bus (as any producer would), and waits for
the inventory service — reached by the Pub/Sub emulator's push subscription — to reserve the stock in Firestore.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from stack.errors import StackError
from stack.state import read_info

DEMO_SKU = "DEMO-MUG"
WAIT_SECONDS = 15.0


def run_demo(state_dir: Path) -> int:
    info = read_info(state_dir)
    if info is None:
        raise StackError(f"no stack recorded in {state_dir}: start one with `make up` first")
    os.environ.update(info.client_env())

    from google.cloud import firestore, pubsub_v1

    from eventkit.catalog import CATALOG, ORDER_PLACED
    from eventkit.events import encode_for_pubsub, new_event

    db = firestore.Client(project=info.project)
    db.collection("products").document(DEMO_SKU).set(
        {"name": "Demo mug", "price": 1200, "available": 100, "reserved": 0}, merge=True
    )
    order_id = f"demo-{uuid.uuid4().hex[:8]}"
    event = new_event(
        CATALOG,
        ORDER_PLACED,
        {
            "order_id": order_id,
            "customer_id": "demo-customer",
            "items": [{"sku": DEMO_SKU, "quantity": 1, "unit_price": 1200}],
            "total": 1200,
            "currency": "EUR",
        },
        source="//shop/demo",
    )
    data, attributes = encode_for_pubsub(event)
    started = time.monotonic()
    message_id = pubsub_v1.PublisherClient().publish(info.topics["order-events"], data, **attributes).result(30)
    print(f"published {ORDER_PLACED} {event.id} (message {message_id}) for order {order_id}")

    reservation = db.collection("reservations").document(order_id)
    while time.monotonic() - started < WAIT_SECONDS:
        snapshot = reservation.get()
        if snapshot.exists:
            elapsed = time.monotonic() - started
            stock = db.collection("products").document(DEMO_SKU).get().to_dict()
            print(
                f"inventory reserved it in {elapsed:.2f} s: reservation {snapshot.get('status')}, "
                f"{DEMO_SKU} available={stock['available']} reserved={stock['reserved']}"
            )
            return 0
        time.sleep(0.1)
    raise StackError(f"no reservation for {order_id} after {WAIT_SECONDS:.0f} s; see {info.log_file('inventory')}")
