"""The order saga end to end on the local stack: orders API → Pub/Sub push → inventory, payments → saga →
notifications, with compensation, concurrency, duplicates and a Pub/Sub outage."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import pubsub_v1
from sent_mail import Mailbox, mail_mentioning
from waiting import wait_for, wait_until_acknowledged

FINAL = ("CONFIRMED", "CANCELLED")


def _order(sku: str = "MUG-1", quantity: int = 1, token: str = "tok_ok", email: str = "ana@example.com") -> dict:
    return {
        "customer_id": "cust-1",
        "email": email,
        "items": [{"sku": sku, "quantity": quantity}],
        "payment_token": token,
        "currency": "EUR",
    }


@pytest.fixture
def shop(clean_stack: dict[str, Any], db: Any) -> dict[str, Any]:
    for sku, price, available in (("MUG-1", 1200, 10), ("LAMP-1", 4900, 5)):
        db.collection("products").document(sku).set(
            {"name": sku, "price": price, "currency": "EUR", "available": available, "reserved": 0}
        )
    return clean_stack


def _place(stack: dict[str, Any], body: dict[str, Any]) -> str:
    response = requests.post(f"{stack['services']['orders']}/orders", json=body, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()["order_id"]


def _final(stack: dict[str, Any], order_id: str, seconds: float = 10) -> dict[str, Any]:
    url = f"{stack['services']['orders']}/orders/{order_id}"
    return wait_for(
        lambda: (order := requests.get(url, timeout=10).json())["status"] in FINAL and order,
        seconds,
        f"order {order_id} final",
    )


def _stock(db: Any, sku: str) -> tuple[int, int, int]:
    """(available, reserved, sold): confirmed orders sell their reservation; the sum never changes."""
    doc = db.collection("products").document(sku).get().to_dict()
    return doc["available"], doc["reserved"], doc.get("sold", 0)


@pytest.mark.compose
def test_happy_path_confirms_within_10s_and_mails_the_customer(shop: dict[str, Any], db: Any, mailbox: Mailbox) -> None:
    started = time.monotonic()
    order_id = _place(shop, _order(quantity=2))

    order = _final(shop, order_id)
    elapsed = time.monotonic() - started

    assert order["status"] == "CONFIRMED", order
    assert (order["inventory"], order["payment"]) == ("RESERVED", "AUTHORIZED")
    assert elapsed < 10
    wait_for(lambda: _stock(db, "MUG-1") == (8, 0, 2), 10, "reservation sold")
    types = [entry["type"] for entry in order["timeline"]]
    assert types[0] == "shop.order.placed.v1" and "shop.payment.authorized.v1" in types
    mails = wait_for(lambda: mail_mentioning(mailbox, order_id), 10, "confirmation mail")
    assert len(mails) == 1 and mails[0]["To"] == "ana@example.com"


@pytest.mark.compose
def test_out_of_stock_cancels_refunds_any_authorization_and_leaves_stock(shop: dict[str, Any], db: Any) -> None:
    order_id = _place(shop, _order(sku="LAMP-1", quantity=6))

    order = _final(shop, order_id)

    assert order["status"] == "CANCELLED"
    assert "out_of_stock" in order["reason"]
    assert _stock(db, "LAMP-1") == (5, 0, 0)
    payment = wait_for(
        lambda: (
            (p := requests.get(f"{shop['services']['orders']}/orders/{order_id}", timeout=10).json())["payment"]
            in ("REFUNDED", "DECLINED")
            and p["payment"]
        ),
        10,
        "payment compensated",
    )
    assert payment == "REFUNDED"  # it had been authorized, so it was refunded


@pytest.mark.compose
def test_declined_payment_cancels_and_releases_the_stock(shop: dict[str, Any], db: Any) -> None:
    order_id = _place(shop, _order(quantity=3, token="tok_declined"))

    order = _final(shop, order_id)

    assert order["status"] == "CANCELLED"
    assert "declined" in order["reason"]
    wait_for(lambda: _stock(db, "MUG-1") == (10, 0, 0), 10, "stock released")


def test_twenty_concurrent_orders_for_five_in_stock_confirm_exactly_five(shop: dict[str, Any], db: Any) -> None:
    with ThreadPoolExecutor(10) as pool:
        order_ids = list(pool.map(lambda _: _place(shop, _order(sku="LAMP-1")), range(20)))

    statuses = [_final(shop, order_id, seconds=60)["status"] for order_id in order_ids]

    assert statuses.count("CONFIRMED") == 5
    assert statuses.count("CANCELLED") == 15
    available, _, _ = _stock(db, "LAMP-1")
    assert available >= 0
    wait_for(lambda: _stock(db, "LAMP-1") == (0, 0, 5), 30, "five sold, none left, none held")


def test_order_placed_delivered_ten_times_reserves_charges_and_mails_once(
    shop: dict[str, Any], db: Any, mailbox: Mailbox, service_log: Callable[[str], str]
) -> None:
    order_id = _place(shop, _order(quantity=1))
    _final(shop, order_id)
    # The flow is over: the reservation sold (inventory handled OrderConfirmed) and the customer mailed.
    wait_for(lambda: _stock(db, "MUG-1") == (9, 0, 1), 10, "reservation sold")
    wait_for(lambda: mail_mentioning(mailbox, order_id), 10, "confirmation mail")
    outbox = {doc.id for doc in db.collection("outbox").stream()}
    [placed] = [
        doc.to_dict() for doc in db.collection("outbox").stream() if doc.get("event_type") == "shop.order.placed.v1"
    ]

    publisher = pubsub_v1.PublisherClient()
    message_ids = [
        publisher.publish(placed["topic"], placed["data"].encode(), **placed["attributes"]).result(timeout=10)
        for _ in range(10)
    ]
    for consumer in ("inventory", "payments"):  # each of the ten duplicates answered by both
        wait_until_acknowledged(service_log, consumer, message_ids)

    # They emitted nothing, so nothing new reaches the saga or notifications (which ignore OrderPlaced), ...
    assert {doc.id for doc in db.collection("outbox").stream()} == outbox
    # ... and changed nothing.
    assert _stock(db, "MUG-1") == (9, 0, 1)
    charges = [doc.to_dict() for doc in db.collection("gateway_charges").stream()]
    assert len([c for c in charges if c.get("order_id") == order_id and c.get("kind", "charge") == "charge"]) == 1
    assert len(mail_mentioning(mailbox, order_id)) == 1


def test_order_written_while_pubsub_is_down_is_delivered_by_the_sweeper(
    shop: dict[str, Any], db: Any, stack_runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stack.bootstrap

    # The restarted emulator has topics before subscriptions; a sweep publishing in between would reach no one.
    # Widen that gap past a sweep interval (5 s): the stack must keep its publishers away until it has closed.
    create_subscriptions = stack.bootstrap.create_subscriptions
    monkeypatch.setattr(
        stack.bootstrap, "create_subscriptions", lambda *args: time.sleep(6) or create_subscriptions(*args)
    )
    stack_runner.stop_pubsub()
    try:
        order_id = _place(shop, _order(quantity=1))  # committed; the publish after the commit fails
        [placed] = [d.to_dict() for d in db.collection("outbox").stream() if d.get("event_type").endswith("placed.v1")]
        assert placed["sent"] is False
    finally:
        stack_runner.start_pubsub()

    order = _final(shop, order_id, seconds=60)

    assert order["status"] == "CONFIRMED"
    wait_for(lambda: _stock(db, "MUG-1") == (9, 0, 1), 10, "one sold")
    assert len(list(db.collection("orders").stream())) == 1


def test_readme_demo_prints_the_three_outcomes(clean_stack: dict[str, Any], stack_runner: Any) -> None:
    import subprocess
    import sys

    from stack.seed import seed_catalog

    seed_catalog(clean_stack["emulators"]["firestore"], clean_stack["project"])  # the catalog `make up` loads
    result = subprocess.run(
        [sys.executable, "-m", "stack", "demo", "--state-dir", str(stack_runner.state_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("in stock, paid") and "CONFIRMED" in line for line in lines), result.stdout
    assert any(line.startswith("out of stock") and "CANCELLED" in line for line in lines), result.stdout
    assert any(line.startswith("payment declined") and "CANCELLED" in line for line in lines), result.stdout


@pytest.mark.compose
def test_one_order_flow_shares_one_trace_started_at_the_api(
    shop: dict[str, Any], mailbox: Mailbox, service_log: Callable[[str], str]
) -> None:
    """No trace context comes with the request (none does locally; Cloud Run adds one): the orders API starts a
    trace, and every service's lines for that order's events carry it, through the events' traceparent."""
    import json

    order_id = _place(shop, _order())
    order = _final(shop, order_id)
    [mail] = wait_for(lambda: mail_mentioning(mailbox, order_id), 10, "confirmation mail")
    # The saga's timeline holds the events it received; the mail's Message-ID, the OrderConfirmed it answered.
    flow = {entry["event_id"] for entry in order["timeline"]} | {mail["Message-ID"].strip("<>").split(".")[0]}

    def lines(service: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in service_log(service).splitlines() if line.startswith("{")]

    [placed] = [
        line for line in lines("orders") if line.get("order_id") == order_id and line["message"] == "order placed"
    ]
    trace = placed["logging.googleapis.com/trace"]
    assert trace.startswith(f"projects/{shop['project']}/traces/")
    processed = {
        service: [line for line in lines(service) if line["message"] == "processed" and line.get("event_id") in flow]
        for service in ("inventory", "payments", "order-saga", "notifications")
    }
    assert all(processed.values()), {service: len(found) for service, found in processed.items()}
    traces = {line.get("logging.googleapis.com/trace") for found in processed.values() for line in found}
    assert traces == {trace}
    other = _place(shop, _order())  # the next order: a trace of its own
    _final(shop, other)
    [placed_other] = [
        line for line in lines("orders") if line.get("order_id") == other and line["message"] == "order placed"
    ]
    assert placed_other["logging.googleapis.com/trace"] != trace
