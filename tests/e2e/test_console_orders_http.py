"""The console's orders pages over plain HTTP on the local stack: a real order's page lists its path across the
services in the order it happened, on one trace, and the failure records of its flow (and no other order's); the
listing filters by status and pages newest first; an unknown order is a plain 404."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from console_support import SCRIPT_ATTRIBUTE, order_dead_letter
from google.cloud import pubsub_v1
from order_flow import CONFIRMED_FLOW, place_order, stock_mug, wait_for_flow
from waiting import wait_for


@pytest.fixture
def console(clean_stack: dict[str, Any]) -> str:
    return clean_stack["services"]["console"]


def _hops(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<li data-service="([^"]+)" data-event="([^"]*)"', page)


def _listed(page: str) -> list[str]:
    return re.findall(r'<tr data-order="([^"]+)">', page)


def test_an_orders_page_shows_its_path_across_the_services_in_order(
    console: str, db: Any, clean_stack: dict[str, Any]
) -> None:
    stock_mug(db)
    order_id = place_order(clean_stack, quantity=2)
    wait_for_flow(db, order_id, CONFIRMED_FLOW)

    page = requests.get(f"{console}/orders/{order_id}", timeout=10)

    assert page.status_code == 200
    hops = _hops(page.text)
    assert hops[0] == ("orders", "shop.order.placed.v1")
    assert set(hops[1:]) == CONFIRMED_FLOW
    position = {hop: index for index, hop in enumerate(hops)}
    # Causes come before what they cause: the saga decides after both outcomes; the mail after the decision.
    assert position[("order-saga", "shop.payment.authorized.v1")] > position[("payments", "shop.order.placed.v1")]
    assert position[("order-saga", "shop.inventory.reserved.v1")] > position[("inventory", "shop.order.placed.v1")]
    outcomes = ("shop.payment.authorized.v1", "shop.inventory.reserved.v1")
    confirmed_at = max(position[("order-saga", t)] for t in outcomes)
    assert position[("notifications", "shop.order.confirmed.v1")] > confirmed_at
    order = db.collection("orders").document(order_id).get().to_dict()
    # One trace from the API's request to the mail: the page names exactly the order's.
    assert re.findall(r'<dd id="trace"><code>([0-9a-f]{32})</code></dd>', page.text) == [order["trace_id"]]
    assert "24.00 EUR" in page.text and "CONFIRMED" in page.text
    assert page.text.count('class="longest"') == 1


def _put_order(db: Any, order_id: str) -> None:
    now = datetime.now(UTC)
    db.collection("orders").document(order_id).set(
        {
            "order_id": order_id, "status": "PENDING", "customer_id": "cust-7", "total": 2400, "currency": "EUR",
            "items": [{"sku": "MUG-1", "quantity": 2, "unit_price": 1200}], "created_at": now, "updated_at": now,
        }
    )  # fmt: skip


def test_an_orders_page_lists_the_failure_records_of_its_flow_and_no_other_orders(
    console: str, db: Any, clean_stack: dict[str, Any]
) -> None:
    _put_order(db, "order-a")
    _put_order(db, "order-b")
    # A poison OrderPlaced of order A on the bus: every consumer of order-events files a permanent failure.
    pubsub_v1.PublisherClient().publish(
        clean_stack["topics"]["order-events"],
        b"{not json",
        **{
            "ce-specversion": "1.0", "ce-id": "poison-a", "ce-type": "shop.order.placed.v1", "ce-source": "//tests",
            "ce-subject": "orders/order-a", "content-type": "application/json",
        },
    ).result(timeout=10)  # fmt: skip
    dead_letter = order_dead_letter(db, clean_stack["project"], "order-a")
    db.collection("failures").document(dead_letter).update({"reason": SCRIPT_ATTRIBUTE})
    inventory_failure = wait_for(
        lambda: next((d.id for d in db.collection("failures").stream() if d.get("consumer") == "inventory"), None)
    )

    a = requests.get(f"{console}/orders/order-a", timeout=10)
    b = requests.get(f"{console}/orders/order-b", timeout=10)

    listed = re.findall(r'<tr data-record="([^"]+)">', a.text)
    assert {inventory_failure, dead_letter} <= set(listed)
    subjects = {db.collection("failures").document(i).get().get("attributes")["ce-subject"] for i in listed}
    assert subjects == {"orders/order-a"}
    assert f'<a href="/failures/{dead_letter}">' in a.text
    assert SCRIPT_ATTRIBUTE not in a.text and "&lt;img src=x onerror=" in a.text
    assert "No failures recorded for this order." not in a.text
    assert b.status_code == 200 and "No failures recorded for this order." in b.text
    assert "data-record=" not in b.text


def test_the_overview_counts_the_deliveries_each_subscription_processed(
    console: str, db: Any, clean_stack: dict[str, Any]
) -> None:
    stock_mug(db)
    wait_for_flow(db, place_order(clean_stack), CONFIRMED_FLOW)
    # OrderPlaced and OrderConfirmed to inventory; OrderPlaced to payments; both outcomes to the saga; the mail.
    expected = {
        "inventory-order-events": 2,
        "payments-order-events": 1,
        "order-saga-order-events": 2,
        "notifications-order-events": 1,
    }
    seen: list[dict[str, int]] = []

    def overview_counts() -> bool:
        page = requests.get(f"{console}/", timeout=10)
        rows = re.findall(r'<tr data-subscription="([^"]+)">(.*?)</tr>', page.text, re.S)
        processed = {name: int(re.search(r'class="count processed">(\d+)<', row).group(1)) for name, row in rows}
        seen.append({name: n for name, n in processed.items() if n})
        return seen[-1] == expected

    # A consumer writes its counts after a delivery's transaction, just before it answers: the ledger shows the
    # flow complete a moment before the last count lands.
    try:
        wait_for(overview_counts, seconds=10, what="the overview's counts")
    except AssertionError:
        assert seen[-1] == expected  # says what it counted instead
        raise


def test_an_unknown_order_is_a_plain_404(console: str) -> None:
    page = requests.get(f"{console}/orders/{'f' * 32}", timeout=10)

    assert page.status_code == 404
    assert "There is no order ffffffff" in page.text


def test_orders_are_listed_newest_first_by_status_a_page_at_a_time(console: str, db: Any) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    for i in range(55):
        status = "CANCELLED" if i % 5 == 0 else "CONFIRMED"
        db.collection("orders").document(f"o{i:03d}").set(
            {
                "order_id": f"o{i:03d}", "status": status, "customer_id": f"c-{i}", "total": 100 * i, "currency": "EUR",
                "created_at": start + timedelta(minutes=i), "updated_at": start + timedelta(minutes=i),
            }
        )  # fmt: skip

    first = requests.get(f"{console}/orders", timeout=10)
    older = re.search(r'<a href="([^"]+)" rel="next">Older</a>', first.text)
    second = requests.get(console + older.group(1).replace("&amp;", "&"), timeout=10)
    cancelled = requests.get(f"{console}/orders?status=CANCELLED", timeout=10)
    pending = requests.get(f"{console}/orders?status=PENDING", timeout=10)
    wrong = requests.get(f"{console}/orders?status=LOST", timeout=10)

    assert _listed(first.text) + _listed(second.text) == [f"o{i:03d}" for i in range(54, -1, -1)]
    assert 'rel="next"' not in second.text
    assert _listed(cancelled.text) == [f"o{i:03d}" for i in range(50, -1, -5)]
    assert pending.status_code == 200 and "No orders with status PENDING." in pending.text
    assert wrong.status_code == 400
