"""The orders pages: recent orders by status, a page at a time, and one order with its path across the services.

GET /orders?status=&after=      orders newest first (every status by default), 50 a page, ``Older`` / ``Newest``
GET /orders/<id>                the order (items, total, status), its hops (service, event, when, how long after
                                the step before) and the failure records of its flow, each linking to its page
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from console.order_path import duration, order_path, traces_of
from console.order_records import STATUSES, OrderNotFound, Orders
from console.page_error import PageError, only
from console.pages import Response, render

PAGE_SIZE = 50
FAILURES_SHOWN = 50  # an order's flow has a few events on four subscriptions: more records than this is a storm
ALL = "all"
_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # the orders API's own rule for an order id


class OrdersPages:
    def __init__(self, orders: Orders) -> None:
        self.orders = orders

    def route(self, request: Any, parts: list[str]) -> Response:
        """``parts``: the path's segments after ``orders``."""
        only(request, "GET")
        if not parts:
            return self.listing(request)
        if len(parts) == 1:
            return self.order(_order_id(parts[0]))
        raise PageError(404, "Not found", f"There is no page at {request.path}.")

    def listing(self, request: Any) -> Response:
        status = request.args.get("status", ALL)
        if status not in (*STATUSES, ALL):
            raise PageError(400, "Unknown status", f"Status must be one of {', '.join((*STATUSES, ALL))}.")
        after = request.args.get("after") or None
        if after is not None:
            after = _order_id(after)
        try:
            page = self.orders.page(status=None if status == ALL else status, limit=PAGE_SIZE, after=after)
        except OrderNotFound as exc:
            raise PageError(404, "Not found", str(exc)) from None
        return render(
            "orders.html",
            page="orders",
            status=status,
            statuses=(ALL, *STATUSES),
            orders=page.orders,
            next_url=f"/orders?{urlencode({'status': status, 'after': page.next_after})}" if page.next_after else None,
            first_url=f"/orders?{urlencode({'status': status})}" if after else None,
        )

    def order(self, order_id: str) -> Response:
        try:
            order = self.orders.get(order_id)
        except OrderNotFound:
            raise PageError(404, "Not found", f"There is no order {order_id}.") from None
        with ThreadPoolExecutor(max_workers=1) as pool:  # the failure records beside the hops: one wait, not two
            found = pool.submit(self.orders.failures, order_id, FAILURES_SHOWN)
            steps = order_path(order, self.orders.hops(order_id))
            failures = found.result()
        return render(
            "order.html",
            page="orders",
            order=order,
            steps=steps,
            traces=traces_of(steps),
            duration=duration,
            failures=failures[:FAILURES_SHOWN],
            failures_cut=len(failures) > FAILURES_SHOWN,
            failures_shown=FAILURES_SHOWN,
        )


def _order_id(text: str) -> str:
    if not _ORDER_ID.match(text):
        raise PageError(404, "Not found", "That is not an order id.")
    return text
