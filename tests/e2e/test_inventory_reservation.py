"""End to end on the local stack: an OrderPlaced event published to `order-events` travels through the real
Pub/Sub emulator's push subscription into the inventory service (functions-framework process), which reserves
stock in the Firestore emulator exactly once and answers with InventoryReserved / InventoryRejected through the
transactional outbox (the `outbox` collection)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from google.cloud import pubsub_v1
from waiting import wait_for, wait_until_acknowledged

from eventkit.catalog import CATALOG, INVENTORY_REJECTED, INVENTORY_RESERVED, ORDER_PLACED
from eventkit.events import DomainEvent, encode_for_pubsub, new_event


def _order(order_id: str, sku: str = "MUG-1", quantity: int = 2) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": "cust-1",
        "items": [{"sku": sku, "quantity": quantity, "unit_price": 1200}],
        "total": 1200 * quantity,
        "currency": "EUR",
    }


def _seed_stock(db: Any, sku: str = "MUG-1", available: int = 10) -> None:
    db.collection("products").document(sku).set({"name": "Mug", "price": 1200, "available": available, "reserved": 0})


def _publish(stack: dict[str, Any], event: DomainEvent) -> str:
    """Publish ``event``; the message id."""
    data, attributes = encode_for_pubsub(event)
    return pubsub_v1.PublisherClient().publish(stack["topics"]["order-events"], data, **attributes).result(timeout=10)


def _push_body(event: DomainEvent, message_id: str) -> dict[str, Any]:
    data, attributes = encode_for_pubsub(event)
    message = {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": message_id}
    return {"message": message, "subscription": "projects/shop-test/subscriptions/inventory-order-events"}


def _answers(db: Any, order_id: str) -> list[dict[str, Any]]:
    """Inventory's outgoing events about one order, as the outbox holds them."""
    docs = (doc.to_dict() for doc in db.collection("outbox").stream())
    return [
        doc for doc in docs if doc["cause"].startswith("inventory/") and json.loads(doc["data"])["order_id"] == order_id
    ]


def _stock(db: Any, sku: str = "MUG-1") -> tuple[int, int]:
    doc = db.collection("products").document(sku).get().to_dict()
    return doc["available"], doc["reserved"]


def test_published_order_placed_reserves_stock_through_push(clean_stack: dict[str, Any], db: Any) -> None:
    _seed_stock(db)
    event = new_event(CATALOG, ORDER_PLACED, _order("order-1"), source="//tests")

    started = time.monotonic()
    _publish(clean_stack, event)
    reservation = wait_for(lambda: db.collection("reservations").document("order-1").get().to_dict())
    elapsed = time.monotonic() - started

    assert reservation["status"] == "RESERVED"
    assert reservation["event_id"] == event.id
    assert _stock(db) == (8, 2)
    assert elapsed < 10, f"push → Firestore took {elapsed:.1f}s"
    (answer,) = wait_for(lambda: [a for a in _answers(db, "order-1") if a["sent"]])
    assert answer["event_type"] == INVENTORY_RESERVED
    assert json.loads(answer["data"]) == {"order_id": "order-1", "items": [{"sku": "MUG-1", "quantity": 2}]}


def test_same_event_published_ten_times_reserves_once(
    clean_stack: dict[str, Any], db: Any, service_log: Callable[[str], str]
) -> None:
    _seed_stock(db)
    event = new_event(CATALOG, ORDER_PLACED, _order("order-2", quantity=3), source="//tests")

    message_ids = [_publish(clean_stack, event) for _ in range(10)]  # ten messages, one event id
    wait_until_acknowledged(service_log, "inventory", message_ids)  # all ten pushes answered: nothing more to come

    assert _stock(db) == (7, 3)


def test_same_event_pushed_ten_times_in_a_row_and_concurrently_has_one_effect(
    clean_stack: dict[str, Any], db: Any
) -> None:
    _seed_stock(db)
    url = clean_stack["services"]["inventory"]
    sequential = new_event(CATALOG, ORDER_PLACED, _order("order-3", quantity=1), source="//tests")
    concurrent = new_event(CATALOG, ORDER_PLACED, _order("order-4", quantity=4), source="//tests")

    in_a_row = [requests.post(url, json=_push_body(sequential, f"m{i}"), timeout=30).json() for i in range(10)]
    with ThreadPoolExecutor(10) as pool:
        at_once = list(
            pool.map(lambda i: requests.post(url, json=_push_body(concurrent, f"c{i}"), timeout=60), range(10))
        )

    assert [r["status"] for r in in_a_row] == ["processed"] + ["duplicate"] * 9
    assert all(r.status_code == 200 for r in at_once)
    assert sorted(r.json()["status"] for r in at_once) == ["duplicate"] * 9 + ["processed"]
    assert _stock(db) == (10 - 1 - 4, 5)
    assert [a["event_type"] for a in _answers(db, "order-3")] == [INVENTORY_RESERVED]
    assert [a["event_type"] for a in _answers(db, "order-4")] == [INVENTORY_RESERVED]


def test_order_beyond_stock_is_rejected_without_touching_stock(clean_stack: dict[str, Any], db: Any) -> None:
    _seed_stock(db, available=1)
    event = new_event(CATALOG, ORDER_PLACED, _order("order-5", quantity=2), source="//tests")

    _publish(clean_stack, event)
    reservation = wait_for(lambda: db.collection("reservations").document("order-5").get().to_dict())

    assert reservation["status"] == "REJECTED"
    assert "only 1 available, 2 wanted" in reservation["reason"]
    assert _stock(db) == (1, 0)
    (answer,) = wait_for(lambda: _answers(db, "order-5"))
    assert answer["event_type"] == INVENTORY_REJECTED
    assert json.loads(answer["data"]) == {
        "order_id": "order-5",
        "reason": "out_of_stock",
        "skus": ["MUG-1"],
        "detail": "MUG-1: only 1 available, 2 wanted",
    }


def test_order_with_an_unknown_sku_reserves_nothing_and_names_it(clean_stack: dict[str, Any], db: Any) -> None:
    _seed_stock(db)
    data = _order("order-6", quantity=1)
    data["items"].append({"sku": "NOPE-9", "quantity": 1, "unit_price": 100})
    event = new_event(CATALOG, ORDER_PLACED, data, source="//tests")

    _publish(clean_stack, event)
    (answer,) = wait_for(lambda: _answers(db, "order-6"))

    assert answer["event_type"] == INVENTORY_REJECTED
    assert (json.loads(answer["data"])["reason"], json.loads(answer["data"])["skus"]) == ("unknown_sku", ["NOPE-9"])
    assert db.collection("reservations").document("order-6").get().get("status") == "REJECTED"
    assert _stock(db) == (10, 0)


def test_malformed_message_on_the_topic_is_acked_recorded_and_logged(clean_stack: dict[str, Any], db: Any) -> None:
    log_file = Path(clean_stack["logs"]) / "inventory.log"
    pubsub_v1.PublisherClient().publish(
        clean_stack["topics"]["order-events"],
        b"{not json",
        **{
            "ce-specversion": "1.0",
            "ce-id": "bad-1",
            "ce-type": ORDER_PLACED,
            "ce-source": "//tests",
            "content-type": "application/json",
        },
    ).result(timeout=10)

    failure = wait_for(
        lambda: next(
            (d.to_dict() for d in db.collection("failures").stream() if d.get("consumer") == "inventory"), None
        )
    )

    assert failure["reason"] == "malformed_delivery"
    assert failure["subscription"].endswith("/inventory-order-events")
    errors = wait_for(
        lambda: [
            entry
            for entry in map(json.loads, (line for line in log_file.read_text().splitlines() if line.startswith("{")))
            if entry.get("severity") == "ERROR" and entry.get("reason") == "malformed_delivery"
        ]
    )
    assert "not JSON" in errors[-1]["message"]
