"""Consumer.on(serialize_on=...) on the Firestore emulator: deliveries that read and write one shared document
queue in the instance instead of colliding in Firestore (where each collision costs a lock timeout and a retry)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask
import pytest

from eventkit import Consumer, DomainEvent, HandlerContext
from eventkit.catalog import CATALOG, ORDER_PLACED
from eventkit.events import encode_for_pubsub, new_event

DELIVERIES = 6


def _order(n: int) -> dict[str, Any]:
    items = [{"sku": "HOT-1", "quantity": 1, "unit_price": 100}]
    return {"order_id": f"o-{n}", "customer_id": "c-1", "items": items, "total": 100, "currency": "EUR"}


def _deliver(consumer: Consumer, n: int) -> dict[str, Any]:
    event = new_event(CATALOG, ORDER_PLACED, _order(n), source="//tests")
    data, attributes = encode_for_pubsub(event)
    envelope = {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": event.id}}
    with flask.Flask("hot-documents").test_request_context("/", method="POST", json=envelope):
        body, status, _ = consumer.handle(flask.request)
    assert status == 200, body
    return json.loads(body)


@pytest.mark.parametrize("serialized", [True, False])
def test_concurrent_deliveries_on_one_document_all_count_and_serialized_ones_never_retry(
    clean_stack: dict[str, Any], db: Any, serialized: bool
) -> None:
    consumer = Consumer(f"test-{uuid.uuid4().hex[:8]}", environ={"GOOGLE_CLOUD_PROJECT": clean_stack["project"]})
    counter = db.collection("hot-test").document(uuid.uuid4().hex)
    counter.set({"reserved": 0})
    attempts, guard = [0], threading.Lock()

    def documents(event: DomainEvent) -> list[str]:
        return [f"products/{line.sku}" for line in event.data.items]  # type: ignore[attr-defined]

    @consumer.on(ORDER_PLACED, serialize_on=documents if serialized else None)
    def reserve(event: DomainEvent, ctx: HandlerContext) -> None:
        with guard:
            attempts[0] += 1
        reserved = counter.get(transaction=ctx.transaction).get("reserved")
        ctx.transaction.update(counter, {"reserved": reserved + 1})

    with ThreadPoolExecutor(DELIVERIES) as pool:
        answers = list(pool.map(lambda n: _deliver(consumer, n), range(DELIVERIES)))

    assert [a["status"] for a in answers] == ["processed"] * DELIVERIES
    assert counter.get().get("reserved") == DELIVERIES  # exactly once each, either way
    if serialized:
        assert attempts[0] == DELIVERIES  # one transaction attempt each: no collision, no retry
