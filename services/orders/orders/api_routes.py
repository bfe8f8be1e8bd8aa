"""The orders HTTP API: routes, request checks and responses (see openapi.yaml, which this must match).

A rejected request writes nothing: every check runs before the one atomic commit that writes.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from eventkit import Service
from eventkit.errors import RetryableError, is_retryable
from eventkit.http_api import ApiError, Response, json_response, method_not_allowed, not_found, read_json_body
from orders.order_request import OrderRequest, validation_details
from orders.order_store import IdempotencyKeyReused, get_order, list_products, place_order
from orders.pricing import PricingError

log = logging.getLogger("orders.api")

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
_ORDER_PATH = re.compile(r"^/orders/([A-Za-z0-9_-]{1,128})$")
MAX_IDEMPOTENCY_KEY = 255


class OrdersApi:
    """The API over the service's runtime (config, logging, clients, outbox)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    @property
    def db(self) -> Any:
        return self.service.db

    def handle(self, request: Any) -> Response:
        return self.service.serve_api(request, self._route)

    def _route(self, request: Any) -> Response:
        path, method = request.path.rstrip("/") or "/", request.method
        if path == "/orders":
            _allow(method, path, ["POST"])
            return self.create_order(request)
        if match := _ORDER_PATH.match(path):
            _allow(method, path, ["GET"])
            return self.show_order(match.group(1))
        if path == "/products":
            _allow(method, path, ["GET"])
            return json_response({"products": [vars(p) for p in list_products(self.db)]})
        if path == "/healthz":
            _allow(method, path, ["GET"])
            return json_response({"status": "ok"})
        if path == "/openapi.yaml":
            _allow(method, path, ["GET"])
            return OPENAPI_PATH.read_text(), 200, {"Content-Type": "application/yaml"}
        raise not_found(f"path {path}")

    def create_order(self, request: Any) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
            raise ApiError(
                422,
                "validation_failed",
                "request is invalid",
                [{"field": "Idempotency-Key", "message": f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters"}],
            )
        body = read_json_body(request)
        if not isinstance(body, dict):
            raise ApiError(
                422,
                "validation_failed",
                "body must be a JSON object",
                [{"field": "(body)", "message": f"expected an object, got {type(body).__name__}"}],
            )
        try:
            order_request = OrderRequest.model_validate(body)
        except ValidationError as exc:
            raise ApiError(422, "validation_failed", "request is invalid", validation_details(exc)) from None
        try:
            placed = place_order(self.service, order_request, key)
        except PricingError as exc:
            raise ApiError(422, "validation_failed", "request is invalid", exc.details) from None
        except IdempotencyKeyReused:
            raise ApiError(
                409, "idempotency_key_reused", "this Idempotency-Key was already used with a different request body"
            ) from None
        except Exception as exc:
            if not is_retryable(exc):
                raise
            # Safe to retry: with the same Idempotency-Key a commit that did land is answered as a replay.
            raise ApiError(503, "try_again", str(exc)) from None

        if placed.staged is not None:
            self._publish_now(placed.staged)
        order = placed.order
        body_out = {
            "order_id": order["order_id"],
            "status": order["status"],
            "total": order["total"],
            "currency": order["currency"],
            "trace_id": order.get("trace_id"),
        }
        headers = {"Location": f"/orders/{order['order_id']}"}
        if placed.replayed:
            headers["Idempotent-Replayed"] = "true"
        log.info(
            "order placed" if not placed.replayed else "order replayed",
            extra={"fields": {"order_id": order["order_id"], "total": order["total"]}},
        )
        return json_response(body_out, 201, headers)

    def _publish_now(self, staged: Any) -> None:
        """Publish right after the commit; if Pub/Sub is unavailable, the sweeper publishes it later."""
        try:
            self.service.publish_staged([staged])
        except RetryableError as exc:
            log.warning(
                "OrderPlaced left for the outbox sweeper",
                extra={"fields": {"event_id": staged.event_id, "error": str(exc)}},
            )

    def show_order(self, order_id: str) -> Response:
        order = get_order(self.db, order_id)
        if order is None:
            raise not_found(f"order {order_id}")
        return json_response(_public(order))


def _allow(method: str, path: str, allowed: list[str]) -> None:
    if method not in allowed and not (method == "HEAD" and "GET" in allowed):
        raise method_not_allowed(method, path, allowed)


def _public(order: dict[str, Any]) -> dict[str, Any]:
    """The order as the API shows it: timestamps as RFC 3339, timeline oldest first."""

    def iso(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    timeline = sorted(order.get("timeline", []), key=lambda entry: iso(entry.get("at")) or "")
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "reason": order.get("reason"),
        "customer_id": order["customer_id"],
        "items": order["items"],
        "total": order["total"],
        "currency": order["currency"],
        "inventory": order.get("inventory"),
        "payment": order.get("payment"),
        "created_at": iso(order.get("created_at")),
        "updated_at": iso(order.get("updated_at")),
        "trace_id": order.get("trace_id"),
        "timeline": [{**entry, "at": iso(entry.get("at"))} for entry in timeline],
    }
