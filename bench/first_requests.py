"""One realistic first request per service, for ``bench/cold_start.py``'s "first request" column.

Readiness (functions-framework answering at all) is not what the first user waits for: the first real request
also builds the Google clients and their gRPC channels. Each request here does what the service does for real —
reads or writes Firestore, publishes, reads Cloud Storage, sends mail — against the benchmark's stack, with fresh
ids, so every run is a first. Not a benchmark itself (no ``main``); figures only, never a test.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from _common import push_envelope

JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class FirstRequest:
    method: str
    path: str
    body: bytes | None
    headers: Mapping[str, str] = field(default_factory=lambda: dict(JSON))
    ok: tuple[int, ...] = (200,)
    what: str = ""


def first_request(service: str, project: str, buckets: Mapping[str, str]) -> FirstRequest:
    """The request a freshly started ``service`` gets first in this benchmark (unknown service: ValueError)."""
    order_id = f"cold-{uuid.uuid4().hex[:12]}"
    order = {
        "order_id": order_id,
        "customer_id": "cold-start",
        "email": "cold@example.com",
        "items": [{"sku": "MUG-1", "quantity": 1, "unit_price": 1200}],
        "total": 1200,
        "currency": "EUR",
        "payment_token": "tok_visa",
    }
    if service == "bare":
        return FirstRequest("POST", "/", _push(project, "shop.order.placed.v1", order), what="a push, answered at once")
    if service == "orders":
        return FirstRequest("GET", "/products", None, {}, what="GET /products (Firestore)")
    if service == "telemetry-ingest":
        reading = {
            "device_id": f"cold-{uuid.uuid4().hex[:8]}",
            "reading_id": "r1",
            "ts": datetime.now(UTC).isoformat(),
            "metrics": {"temperature": 21.5},
        }
        return FirstRequest(
            "POST", "/telemetry", json.dumps([reading]).encode(), ok=(202,), what="POST /telemetry (Pub/Sub)"
        )
    if service == "order-saga":
        reserved = {"order_id": order_id, "items": [{"sku": "MUG-1", "quantity": 1}]}
        return FirstRequest(
            "POST", "/", _push(project, "shop.inventory.reserved.v1", reserved), what="an outcome (Firestore)"
        )
    if service in ("inventory", "payments"):
        return FirstRequest("POST", "/", _push(project, "shop.order.placed.v1", order), what="OrderPlaced (Firestore)")
    if service == "notifications":
        confirmed = {key: order[key] for key in ("order_id", "customer_id", "email", "total", "currency")}
        return FirstRequest(
            "POST", "/", _push(project, "shop.order.confirmed.v1", confirmed), what="OrderConfirmed (mail)"
        )
    if service == "telemetry-analytics":
        readings = {
            "device_id": f"cold-{uuid.uuid4().hex[:8]}",
            "readings": [{"reading_id": "r1", "ts": datetime.now(UTC).isoformat(), "metrics": {"temperature": 21.5}}],
        }
        return FirstRequest(
            "POST", "/", _push(project, "shop.telemetry.readings.v1", readings), what="readings (Firestore)"
        )
    if service == "images":
        return FirstRequest("POST", "/", _gone_upload(buckets["uploads"]), what="an upload already gone (Storage)")
    if service == "deadletters":
        dead = _push(project, "shop.order.placed.v1", order)
        return FirstRequest("POST", "/", dead, what="a dead letter (Firestore)")
    raise ValueError(f"no first request for service {service!r}")


def _push(project: str, event_type: str, data: dict[str, Any]) -> bytes:
    return push_envelope(
        event_type, data, subscription=f"projects/{project}/subscriptions/cold-start", source="//bench/cold-start"
    )


def _gone_upload(bucket: str) -> bytes:
    """A Cloud Storage notification for an object that no longer exists: the service looks it up and skips it."""
    name, generation = f"cold-start/{uuid.uuid4().hex}.jpg", "1"
    resource = {"bucket": bucket, "name": name, "generation": generation, "size": "1024", "contentType": "image/jpeg"}
    attributes = {
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
        "bucketId": bucket,
        "objectId": name,
        "objectGeneration": generation,
    }
    message = {
        "data": base64.b64encode(json.dumps(resource).encode()).decode(),
        "attributes": attributes,
        "messageId": uuid.uuid4().hex,
    }
    return json.dumps({"message": message, "subscription": "projects/_/subscriptions/cold-start"}).encode()
