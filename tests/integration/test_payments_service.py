"""The payments service's handlers in this process, against the Firestore and Pub/Sub emulators.

The orchestrations end-to-end tests cannot arrange: a cancellation that arrives while the charge is in flight,
a cancellation that arrives twice under different event ids, a redelivery after the gateway answered.
Its outgoing events go to a topic of their own, so the stack's services do not react to them.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

import flask
import pytest
from google.cloud import pubsub_v1
from waiting import wait_for

from eventkit.catalog import CATALOG, ORDER_CANCELLED, ORDER_PLACED, PAYMENT_AUTHORIZED, PAYMENT_REFUNDED
from eventkit.events import DomainEvent, encode_for_pubsub, new_event


@pytest.fixture
def payments(clean_stack: dict[str, Any], service_main: Callable[..., ModuleType]) -> ModuleType:
    """payments/main.py, loaded fresh with its environment (no transient failures unless a test asks)."""
    topic = f"payments-it-{uuid.uuid4().hex[:8]}"
    pubsub_v1.PublisherClient().create_topic(name=f"projects/{clean_stack['project']}/topics/{topic}")
    return service_main("payments", TOPIC_ORDER_EVENTS=topic, K_SERVICE="payments", GATEWAY_TRANSIENT_FAILURES="1")


def _push(service: ModuleType, event: DomainEvent) -> tuple[int, dict[str, Any]]:
    data, attributes = encode_for_pubsub(event)
    body = {
        "message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": uuid.uuid4().hex},
        "subscription": "projects/shop-test/subscriptions/payments-order-events",
    }
    app = flask.Flask("payments-it")
    with app.test_request_context("/", method="POST", json=body):
        text, status, _ = service.handle_event(flask.request)
    return status, json.loads(text)


def _placed(order_id: str, token: str = "tok_visa") -> DomainEvent:
    data = {
        "order_id": order_id,
        "customer_id": "c-1",
        "items": [{"sku": "MUG-1", "quantity": 2, "unit_price": 1200}],
        "total": 2400,
        "currency": "EUR",
        "email": "ana@example.com",
        "payment_token": token,
    }
    return new_event(CATALOG, ORDER_PLACED, data, source="//tests")


def _cancelled(order_id: str) -> DomainEvent:
    data = {"order_id": order_id, "customer_id": "c-1", "total": 2400, "currency": "EUR", "reason": "out_of_stock"}
    return new_event(CATALOG, ORDER_CANCELLED, data, source="//tests")


def _gateway(db: Any, kind: str) -> list[dict[str, Any]]:
    return [d.to_dict() for d in db.collection("gateway_charges").stream() if d.get("kind") == kind]


def _outbox_types(db: Any) -> list[str]:
    return sorted(d.get("event_type") for d in db.collection("outbox").stream())


def test_cancellation_during_a_charge_waits_then_refunds_once(payments: ModuleType, db: Any) -> None:
    placed = _placed("o-race", token="tok_transient")

    first = _push(payments, placed)  # claims CHARGING, then the gateway fails transiently
    while_charging = _push(payments, _cancelled("o-race"))
    settled = _push(payments, placed)  # the redelivery: same key, now approved
    cancel_retry = _push(payments, _cancelled("o-race"))

    assert first[0] == 503 and while_charging[0] == 503
    assert while_charging[1]["status"] == "retry" and "in flight" in while_charging[1]["message"]
    assert settled[0] == 200 and cancel_retry[0] == 200
    assert len(_gateway(db, "charge")) == 1
    assert len(_gateway(db, "refund")) == 1
    assert db.collection("payments").document("o-race").get().get("status") == "REFUNDED"
    assert _outbox_types(db) == [PAYMENT_AUTHORIZED, PAYMENT_REFUNDED]


def test_two_cancellations_of_one_order_refund_once(payments: ModuleType, db: Any) -> None:
    assert _push(payments, _placed("o-2"))[0] == 200

    statuses = [_push(payments, _cancelled("o-2"))[0] for _ in range(2)]  # two events, two ids

    assert statuses == [200, 200]
    (refund,) = _gateway(db, "refund")
    assert refund["amount"] == 2400
    assert _outbox_types(db).count(PAYMENT_REFUNDED) == 1


def test_redelivered_order_placed_answers_duplicate_without_a_second_charge(payments: ModuleType, db: Any) -> None:
    placed = _placed("o-3")

    answers = [_push(payments, placed) for _ in range(3)]

    assert [status for status, _ in answers] == [200, 200, 200]
    (charge,) = _gateway(db, "charge")
    assert charge["attempts"] == 1
    ledger = db.collection("idempotency").document(f"payments:{placed.id}").get()
    assert ledger.get("status") == "COMPLETED"
    assert _outbox_types(db) == [PAYMENT_AUTHORIZED]


def test_outgoing_event_is_published_and_marked_sent(payments: ModuleType, db: Any) -> None:
    _push(payments, _placed("o-4"))

    # The "sent" mark is written in a batch a few milliseconds after the publish (eventkit/sent_marks.py).
    (entry,) = wait_for(lambda: [d.to_dict() for d in db.collection("outbox").stream() if d.get("sent")], 5, "sent")

    assert entry["message_id"]
    assert entry["attributes"]["ce-subject"] == "orders/o-4"
    assert entry["topic"].endswith(f"/topics/{payments.consumer.config.topic('order-events')}")


def test_missing_token_is_declined_without_calling_the_gateway(payments: ModuleType, db: Any) -> None:
    placed = _placed("o-5")
    data = placed.data.model_dump(mode="json")
    data.pop("payment_token")
    event = new_event(CATALOG, ORDER_PLACED, data, source="//tests")

    status, _ = _push(payments, event)

    assert status == 200
    assert _gateway(db, "charge") == []
    payment = db.collection("payments").document("o-5").get().to_dict()
    assert (payment["status"], payment["decline_reason"]) == ("DECLINED", "missing_token")


def test_service_refuses_to_start_with_a_bad_limit(
    clean_stack: dict[str, Any], service_main: Callable[..., ModuleType]
) -> None:
    from eventkit import ConfigError

    with pytest.raises(ConfigError, match="PAYMENT_LIMIT"):
        service_main("payments", TOPIC_ORDER_EVENTS="order-events", PAYMENT_LIMIT="-5")
