"""An order's page lists the failure records of its flow, escaped, each linking to its own page; says so plainly
when there are none; and says when the list was cut. The order store here is a fake: what it is asked and what
the page makes of the answer are the pure part (the Firestore query is tested on the emulator)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from console.orders_pages import FAILURES_SHOWN, OrdersPages

ORDER = {"id": "o-1", "status": "PENDING", "items": [], "total": 0, "currency": "EUR", "created_at": None}
HOSTILE = "<script>window.__pwned = 1</script>"


class _Orders:
    def __init__(self, failures: list[dict[str, Any]]) -> None:
        self._failures = failures
        self.asked: list[tuple[str, int]] = []

    def get(self, order_id: str) -> dict[str, Any]:
        return {**ORDER, "id": order_id}

    def hops(self, order_id: str) -> list[Any]:
        return []

    def failures(self, order_id: str, limit: int) -> list[dict[str, Any]]:
        self.asked.append((order_id, limit))
        return self._failures[: limit + 1]


def _record(record_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": record_id, "kind": "dead_letter", "status": "new", "reason": "max_delivery_attempts",
        "event_type": "shop.order.confirmed.v1", "subscription": "projects/p/subscriptions/notifications-order-events",
        "last_seen": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), **fields,
    }  # fmt: skip


def _page(orders: _Orders) -> str:
    body, code, _ = OrdersPages(orders).order("o-1")  # type: ignore[arg-type]
    assert code == 200
    return str(body)


def test_the_records_of_the_flow_are_listed_escaped_and_linked() -> None:
    orders = _Orders(
        [
            _record("rec-a"),
            _record("rec-b", kind="permanent_failure", status="replayed", reason=HOSTILE, event_type=HOSTILE),
        ]
    )

    page = _page(orders)

    assert orders.asked == [("o-1", FAILURES_SHOWN)]
    assert re.findall(r'<tr data-record="([^"]+)">', page) == ["rec-a", "rec-b"]
    assert '<a href="/failures/rec-a">rec-a</a>' in page and '<a href="/failures/rec-b">rec-b</a>' in page
    assert "notifications-order-events" in page and "2026-01-02 03:04:05 UTC" in page
    assert "<script>window" not in page and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    assert "No failures recorded for this order." not in page and 'id="failures-cut"' not in page


def test_an_order_without_records_says_so() -> None:
    page = _page(_Orders([]))

    assert "No failures recorded for this order." in page
    assert 'id="failures"' not in page


def test_a_list_cut_at_the_limit_says_so() -> None:
    page = _page(_Orders([_record(f"rec-{i:03d}") for i in range(FAILURES_SHOWN + 5)]))

    assert len(re.findall(r"<tr data-record=", page)) == FAILURES_SHOWN
    assert 'id="failures-cut"' in page
