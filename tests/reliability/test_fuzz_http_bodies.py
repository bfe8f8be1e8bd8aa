"""Property-based fuzzing of every HTTP body validator: never a 500 or an unhandled exception.

Each endpoint runs in this process (Flask test client) against the stack's emulators; its outgoing events go to
a topic of its own that nothing reads, so the stack's services never see the fuzz. The expected answers:

- ``POST /orders`` (orders API): 201, or a 4xx with ``{"error": {"code", "message"}}``;
- ``POST /telemetry`` (telemetry ingest): 202, or a 4xx with the same error shape;
- an eventkit consumer (every push/Eventarc endpoint) and the dead-letter recorder: 200 — processed, ignored,
  or rejected AND recorded as a permanent failure in ``failures``: the record the answer names (``failure_id``)
  holds this very body (or its message's data), its reason and error.

The delivery parser itself is fuzzed without I/O in tests/unit/test_delivery.py.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import flask
import pytest
from google.cloud import pubsub_v1
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_main import load_main

from eventkit import Consumer, DomainEvent, HandlerContext, Service
from eventkit.catalog import CATALOG, ORDER_PLACED
from eventkit.events import encode_for_pubsub, new_event
from eventkit.failures import (
    FAILURES_COLLECTION,
    KIND_DEAD_LETTER,
    KIND_PERMANENT_FAILURE,
    MAX_STORED_BYTES,
    stored_payload,
)
from orders.api_routes import OrdersApi

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=5), max_leaves=25
)
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
CONTENT_TYPES = st.sampled_from(["application/json", "application/cloudevents+json", "text/plain", "", "image/png"])
ORDER = {
    "order_id": "o-fuzz",
    "customer_id": "c-1",
    "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 100}],
    "total": 100,
    "currency": "EUR",
}


def _client(handler: Any) -> Any:
    app = flask.Flask(f"fuzz-{uuid.uuid4().hex[:6]}")
    app.add_url_rule("/", "root", lambda: handler(flask.request), methods=["GET", "POST", "PUT"])
    app.add_url_rule("/<path:rest>", "any", lambda rest: handler(flask.request), methods=["GET", "POST", "PUT"])
    return app.test_client()


@pytest.fixture(scope="module")
def quiet_topic(stack: dict[str, Any]) -> str:
    """A topic nothing subscribes to: where the fuzzed services' events go."""
    name = f"fuzz-{uuid.uuid4().hex[:8]}"
    pubsub_v1.PublisherClient().create_topic(name=f"projects/{stack['project']}/topics/{name}")
    return name


@pytest.fixture(scope="module")
def environment(stack: dict[str, Any], quiet_topic: str) -> Iterator[None]:
    changes = {"TOPIC_ORDER_EVENTS": quiet_topic, "TOPIC_TELEMETRY": quiet_topic, "K_SERVICE": "fuzz"}
    previous = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    yield
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _assert_clear_4xx(response: Any, success: int) -> None:
    assert response.status_code == success or 400 <= response.status_code < 500, response.get_data(as_text=True)
    if response.status_code != success:
        error = response.get_json()["error"]
        assert error["code"] and error["message"]


# --- the orders API -------------------------------------------------------------------------------------------

ORDER_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "customer_id": st.just("c-1") | SCALARS,
        "email": st.just("a@example.com") | st.emails() | SCALARS,
        "items": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "sku": st.sampled_from(["SKU-1", "MUG-001", "TEE-001"]) | SCALARS,
                    "quantity": st.integers(-3, 120) | SCALARS,
                    "unit_price": SCALARS,
                },
            )
            | JSON_VALUES,
            max_size=4,
        )
        | JSON_VALUES,
        "payment_token": st.just("tok_visa") | SCALARS,
        "currency": st.sampled_from(["EUR", "USD", "eur", "XXX"]) | SCALARS,
        "extra": JSON_VALUES,
    },
)


@pytest.fixture(scope="module")
def orders_api(environment: None, stack: dict[str, Any]) -> Any:
    runtime = Service("orders", topics=["order-events"], environ={**os.environ, "K_SERVICE": "orders"})
    return _client(OrdersApi(runtime).handle)


@pytest.mark.timeout(240)
@FUZZ
@given(body=ORDER_BODIES | JSON_VALUES, key=st.none() | HEADER_TEXT)
def test_post_orders_answers_201_or_a_clear_4xx_for_any_json(orders_api: Any, body: Any, key: str | None) -> None:
    headers = {"Idempotency-Key": key} if key is not None else {}
    _assert_clear_4xx(orders_api.post("/orders", json=body, headers=headers), 201)


@pytest.mark.timeout(240)
@FUZZ
@given(raw=st.binary(max_size=300), content_type=CONTENT_TYPES, path=st.sampled_from(["/orders", "/orders/x", "/n"]))
def test_post_orders_answers_a_clear_4xx_for_any_bytes(
    orders_api: Any, raw: bytes, content_type: str, path: str
) -> None:
    response = orders_api.post(path, data=raw, headers={"Content-Type": content_type} if content_type else {})
    _assert_clear_4xx(response, 201)


# --- telemetry ingest -----------------------------------------------------------------------------------------

READINGS = st.fixed_dictionaries(
    {},
    optional={
        "device_id": st.just("dev-1") | SCALARS,
        "reading_id": st.just("r-1") | SCALARS,
        "ts": st.just("2020-01-01T00:00:00Z") | st.datetimes().map(lambda d: d.isoformat() + "Z") | SCALARS,
        "metrics": st.dictionaries(st.sampled_from(["temperature", "humidity"]) | TEXT, SCALARS, max_size=3)
        | JSON_VALUES,
    },
)


@pytest.fixture(scope="module")
def telemetry_api(environment: None) -> Any:
    return _client(load_main("telemetry").api)


@pytest.mark.timeout(240)
@FUZZ
@given(body=READINGS | st.lists(READINGS, max_size=5) | JSON_VALUES)
def test_post_telemetry_answers_202_or_a_clear_4xx_for_any_json(telemetry_api: Any, body: Any) -> None:
    _assert_clear_4xx(telemetry_api.post("/telemetry", json=body), 202)


@pytest.mark.timeout(240)
@FUZZ
@given(raw=st.binary(max_size=300), content_type=CONTENT_TYPES)
def test_post_telemetry_answers_a_clear_4xx_for_any_bytes(telemetry_api: Any, raw: bytes, content_type: str) -> None:
    response = telemetry_api.post(
        "/telemetry", data=raw, headers={"Content-Type": content_type} if content_type else {}
    )
    _assert_clear_4xx(response, 202)


# --- push endpoints: an eventkit consumer and the dead-letter recorder -----------------------------------------

ATTRIBUTES = st.dictionaries(TEXT, TEXT, max_size=4) | st.builds(
    lambda extra: {**encode_for_pubsub(new_event(CATALOG, ORDER_PLACED, ORDER, source="//fuzz"))[1], **extra},
    st.dictionaries(
        st.sampled_from(["ce-type", "ce-id", "ce-specversion", "CloudPubSubDeadLetterSourceDeliveryCount"]),
        TEXT,
        max_size=2,
    ),
)
MESSAGE_DATA = (
    st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode())
    | st.just(base64.b64encode(json.dumps(ORDER).encode()).decode())
    | SCALARS
)
PUSH_BODIES = st.fixed_dictionaries(
    {"message": st.fixed_dictionaries(
        {"messageId": st.uuids().map(str) | SCALARS},
        optional={
            "data": MESSAGE_DATA,
            "attributes": ATTRIBUTES | JSON_VALUES,
            "publishTime": st.just("2024-05-01T00:00:00Z") | SCALARS,
            "orderingKey": SCALARS,
        },
    ) | JSON_VALUES},
    optional={"subscription": st.just("projects/shop-test/subscriptions/fuzz") | SCALARS, "deliveryAttempt": SCALARS},
)  # fmt: skip


@pytest.fixture(scope="module")
def consumer(environment: None, stack: dict[str, Any]) -> Consumer:
    runtime = Consumer(f"fuzz-{uuid.uuid4().hex[:6]}", environ={"GOOGLE_CLOUD_PROJECT": stack["project"]})

    @runtime.on(ORDER_PLACED)
    def place(event: DomainEvent, ctx: HandlerContext) -> None:
        ctx.transaction.set(ctx.db.collection("fuzz-effects").document(event.id), {"seen": True})

    return runtime


def _sent_message(sent: bytes) -> dict[str, Any]:
    """The ``message`` object of a sent push body, if it has one."""
    try:
        envelope = json.loads(sent)
    except ValueError:
        return {}
    message = envelope.get("message") if isinstance(envelope, dict) else None
    return message if isinstance(message, dict) else {}


def _sent_payloads(sent: bytes) -> list[bytes]:
    """What a record of this body may store as its payload: the body itself (unreadable), or its message's data,
    base64-decoded as Pub/Sub sends it (or URL-safe, which eventkit also reads)."""
    candidates = [sent]
    data = _sent_message(sent).get("data")
    if data is None or data == "":  # a message without data
        candidates.append(b"")
    elif isinstance(data, str):
        for decode in (
            lambda: base64.b64decode(data, validate=True),
            lambda: base64.b64decode(data + "=" * (-len(data) % 4), altchars=b"-_", validate=True),
        ):
            with contextlib.suppress(binascii.Error, ValueError):
                candidates.append(decode())
    return candidates


def _assert_holds_the_payload(record: dict[str, Any], sent: bytes) -> None:
    """The record's payload is one of this body's forms, whole or cut at MAX_STORED_BYTES."""
    payloads = [p for p in _sent_payloads(sent) if record["payload_bytes"] == len(p)]
    assert any(stored_payload(record) == p[:MAX_STORED_BYTES] for p in payloads), (record["payload"], sent[:200])
    assert record["payload_truncated"] == (record["payload_bytes"] > MAX_STORED_BYTES)


def _sent_message_ids(sent: bytes) -> set[str]:
    message = _sent_message(sent)
    return {value for value in (message.get("messageId"), message.get("message_id")) if isinstance(value, str)}


def _assert_records_the_rejection(db: Any, answer: dict[str, Any], sent: bytes, consumer: str) -> None:
    """The failure record the answer names is this delivery's: its consumer, reason, error, body and headers."""
    assert answer["reason"]
    snapshot = db.collection(FAILURES_COLLECTION).document(answer["failure_id"]).get()
    assert snapshot.exists, f"the rejection's failure record {answer['failure_id']} does not exist"
    record = snapshot.to_dict()
    assert (record["kind"], record["consumer"], record["status"]) == (KIND_PERMANENT_FAILURE, consumer, "new")
    assert (record["reason"], record["error"]) == (answer["reason"], answer["message"][:2000])
    _assert_holds_the_payload(record, sent)
    assert record["message_id"] is None or record["message_id"] in _sent_message_ids(sent)
    assert record["headers"]["content-type"] == "application/json"
    assert record["headers"].get("content-length", "0") == str(len(sent))  # no header for an empty body


def _assert_acked_and_recorded(response: Any, consumer: Consumer, sent: bytes) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    if answer["status"] == "rejected":
        _assert_records_the_rejection(consumer.db, answer, sent, consumer.name)


@pytest.mark.timeout(240)
@FUZZ
@given(body=PUSH_BODIES | JSON_VALUES, raw=st.none() | st.binary(max_size=200))
def test_consumer_answers_200_and_records_every_rejection(consumer: Consumer, body: Any, raw: bytes | None) -> None:
    data = raw if raw is not None else json.dumps(body).encode()
    response = _client(consumer.handle).post("/", data=data, headers={"Content-Type": "application/json"})
    _assert_acked_and_recorded(response, consumer, data)


@pytest.fixture(scope="module")
def recorder(environment: None, stack: dict[str, Any]) -> Any:
    return _client(load_main("deadletters").handle_event)


@pytest.mark.timeout(240)
@FUZZ
@given(body=PUSH_BODIES | JSON_VALUES, raw=st.none() | st.binary(max_size=200))
def test_dead_letter_recorder_answers_200_and_records_everything(
    recorder: Any, consumer: Consumer, body: Any, raw: bytes | None
) -> None:
    data = raw if raw is not None else json.dumps(body).encode()
    response = recorder.post("/", data=data, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["status"] in {"recorded", "duplicate", "dead_lettered_again", "rejected"}
    if answer["status"] == "rejected":
        _assert_records_the_rejection(consumer.db, answer, data, "deadletters")
        return
    snapshot = consumer.db.collection(FAILURES_COLLECTION).document(answer["record_id"]).get()
    assert snapshot.exists, f"the dead letter's record {answer['record_id']} does not exist"
    record = snapshot.to_dict()
    assert record["kind"] == KIND_DEAD_LETTER
    assert _sent_message_ids(data) & set(record["message_ids"]), "the record does not list this message"
    if answer["status"] != "duplicate":  # recorded now, or counted again: this message is the record's latest
        assert record["message_id"] in _sent_message_ids(data)
    if answer["status"] == "recorded":  # a new record: this message's data
        _assert_holds_the_payload(record, data)
