"""The console's orders pages in a real browser (headless Debian chromium) on the local stack: an order placed
through the orders API, once final, shows its hops in order — OrderPlaced, the outcomes, OrderConfirmed and the
notification — and the failure records of its flow, each linking to its page; the listing links to it.
Screenshots under .local/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest
from console_support import order_dead_letter
from order_flow import CONFIRMED_FLOW, place_order, stock_mug, wait_for_flow
from selenium.webdriver.common.by import By


@pytest.fixture
def console(clean_stack: dict[str, Any]) -> str:
    return clean_stack["services"]["console"]


def test_an_orders_page_shows_its_hops_in_order(
    browser: Any, screenshot: Any, console: str, db: Any, clean_stack: dict[str, Any]
) -> None:
    stock_mug(db)
    order_id = place_order(clean_stack)
    wait_for_flow(db, order_id, CONFIRMED_FLOW)
    dead_letter = order_dead_letter(db, clean_stack["project"], order_id)  # a confirmation mail that never went out

    browser.get(f"{console}/orders")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Orders"
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-order="{order_id}"]')
    assert "CONFIRMED" in row.text
    screenshot("console-orders")
    row.find_element(By.TAG_NAME, "a").click()

    assert browser.find_element(By.TAG_NAME, "h1").text == f"Order {order_id}"
    steps = browser.find_elements(By.CSS_SELECTOR, "#hops li")
    hops = [(step.get_attribute("data-service"), step.get_attribute("data-event")) for step in steps]
    assert hops[0] == ("orders", "shop.order.placed.v1")
    assert set(hops[1:]) == CONFIRMED_FLOW
    order = [event for _, event in hops]
    assert order.index("shop.order.placed.v1") < order.index("shop.payment.authorized.v1")
    assert max(order.index("shop.payment.authorized.v1"), order.index("shop.inventory.reserved.v1")) < order.index(
        "shop.order.confirmed.v1"
    )
    assert hops[-1] in {("notifications", "shop.order.confirmed.v1"), ("inventory", "shop.order.confirmed.v1")}
    assert all(step.find_element(By.CLASS_NAME, "when").text.endswith("UTC") for step in steps)
    assert [step.find_element(By.CLASS_NAME, "wait").text.startswith("+") for step in steps[1:]] == [True] * 6
    assert browser.find_element(By.ID, "status").text.startswith("CONFIRMED")
    assert browser.find_element(By.CSS_SELECTOR, "nav a[aria-current=page]").text == "Orders"
    screenshot("console-order")

    (failure,) = browser.find_elements(By.CSS_SELECTOR, "#failures tr[data-record]")
    assert failure.get_attribute("data-record") == dead_letter
    assert "dead letter" in failure.text and "shop.order.confirmed.v1" in failure.text
    browser.execute_script("arguments[0].scrollIntoView()", failure)
    screenshot("console-order-failures")
    failure.find_element(By.TAG_NAME, "a").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Dead letter {dead_letter}"


def test_an_unknown_order_says_so(browser: Any, console: str) -> None:
    browser.get(f"{console}/orders/{'0' * 32}")

    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    assert f"There is no order {'0' * 32}." in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
