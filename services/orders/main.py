"""orders: the HTTP API (target ``api``) and the saga that ends each order (target ``handle_event``).

One codebase, two Cloud Run services (see topology.yaml): ``orders`` serves the API and may be public;
``order-saga`` takes the push deliveries of inventory and payment outcomes and the outbox sweeper's schedule,
and only the push and scheduler identities may invoke it.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from eventkit import Consumer, Service
from eventkit.http_api import Response, json_response
from orders.api_routes import OrdersApi
from orders.order_store import ORDER_TOPIC
from orders.saga_handlers import HANDLED, on_outcome, order_document

SWEEP_PATH = "/tasks/sweep-outbox"
# An entry younger than this may still be published by the request that wrote it.
SWEEP_AFTER = timedelta(seconds=float(os.environ.get("OUTBOX_SWEEP_AFTER_SECONDS", "30")))

# Each target has its runtime; a process serves one of them and builds the other's clients never (they are
# created on first use).
orders_api = OrdersApi(Service("orders", topics=[ORDER_TOPIC]))
saga = Consumer("order-saga", topics=[ORDER_TOPIC])
for event_type in HANDLED:
    # The inventory and payment outcomes of one order arrive together and both update the order document.
    saga.on(event_type, serialize_on=order_document)(on_outcome)


def api(request: Any) -> Response:
    """functions-framework target of the orders service."""
    return orders_api.handle(request)


def handle_event(request: Any) -> Response:
    """functions-framework target of the order-saga service: outcome events, and the outbox sweeper."""
    if request.path == SWEEP_PATH:
        if request.method != "POST":
            return json_response({"error": {"code": "method_not_allowed", "message": "use POST"}}, 405)
        result = saga.sweep_outbox(older_than=SWEEP_AFTER)
        return json_response(
            {"published": result.published, "failed": result.failed}, 200 if not result.failed else 503
        )
    return saga.handle(request)
