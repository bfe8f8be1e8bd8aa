"""The consumer runtime with real Firestore and a real Pub/Sub push: what is acked, retried and recorded.

A consumer built with eventkit runs in this process behind a real HTTP server; the Pub/Sub emulator pushes to it.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import flask
import pytest
import requests
from google.cloud import pubsub_v1
from waiting import wait_for
from werkzeug.serving import make_server

from eventkit import Consumer, DomainEvent, HandlerContext
from eventkit.catalog import CATALOG, ORDER_PLACED
from eventkit.events import encode_for_pubsub, new_event

ORDER = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 100}],
    "total": 100,
    "currency": "EUR",
}


@pytest.fixture
def serve(clean_stack: dict[str, Any]) -> Iterator[Callable[[Consumer], str]]:
    """Serve a consumer over HTTP on a free port; returns its URL."""
    servers: list[Any] = []

    def start(consumer: Consumer) -> str:
        app = flask.Flask("test-consumer")
        app.add_url_rule("/", "handle", lambda: consumer.handle(flask.request), methods=["POST"])
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()


def _consumer(project: str) -> Consumer:
    return Consumer(f"test-{uuid.uuid4().hex[:8]}", environ={"GOOGLE_CLOUD_PROJECT": project})


def _push_subscription(project: str, endpoint: str) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    topic = pubsub_v1.PublisherClient().create_topic(name=f"projects/{project}/topics/{name}").name
    pubsub_v1.SubscriberClient().create_subscription(
        request={
            "name": f"projects/{project}/subscriptions/{name}-push",
            "topic": topic,
            "push_config": {"push_endpoint": endpoint},
            "ack_deadline_seconds": 10,
            "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 2}},
        }
    )
    return topic


def test_handler_exception_answers_5xx_and_the_emulator_redelivers(
    clean_stack: dict[str, Any], serve: Callable[[Consumer], str]
) -> None:
    consumer = _consumer(clean_stack["project"])
    calls: list[int] = []

    @consumer.on(ORDER_PLACED)
    def flaky(event: DomainEvent, ctx: HandlerContext) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")
        ctx.transaction.set(ctx.db.collection("effects").document(event.id), {"done": True})

    topic = _push_subscription(clean_stack["project"], serve(consumer))
    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests")
    data, attributes = encode_for_pubsub(event)
    pubsub_v1.PublisherClient().publish(topic, data, **attributes).result(timeout=10)

    db = consumer.db
    wait_for(lambda: db.collection("effects").document(event.id).get().exists)
    assert len(calls) >= 2  # the first push got a 500, the emulator pushed again


def test_malformed_delivery_is_acked_recorded_and_logged_as_error(
    clean_stack: dict[str, Any], serve: Callable[[Consumer], str], capsys: pytest.CaptureFixture[str]
) -> None:
    consumer = _consumer(clean_stack["project"])
    url = serve(consumer)
    body = {"message": {"data": base64.b64encode(b"not json").decode(), "messageId": "poison-1"}, "subscription": "s"}

    response = requests.post(url, json=body, timeout=10)

    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    failures = [doc.to_dict() for doc in consumer.db.collection("failures").stream()]
    assert len(failures) == 1
    record = consumer.db.collection("failures").document(response.json()["failure_id"]).get().to_dict()
    assert record["consumer"] == consumer.name
    assert record["message_id"] == "poison-1"
    assert record["reason"] == "malformed_delivery"
    assert json.loads(record["payload"]["text"]) == body  # the delivery as sent: it could not be read
    errors = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"ERROR"' in line]
    assert any("not a CloudEvent" in entry["message"] for entry in errors), errors


def test_the_same_poison_message_twice_updates_one_failure_record(
    clean_stack: dict[str, Any], serve: Callable[[Consumer], str]
) -> None:
    consumer = _consumer(clean_stack["project"])
    url = serve(consumer)
    body = {"message": {"messageId": "poison-2", "attributes": {"ce-specversion": "1.0"}}, "subscription": "s"}

    for _ in range(2):
        assert requests.post(url, json=body, timeout=10).status_code == 200

    failures = [doc.to_dict() for doc in consumer.db.collection("failures").stream()]
    assert [failure["count"] for failure in failures] == [2]


def test_unknown_type_is_rejected_and_an_unrouted_known_type_is_ignored(
    clean_stack: dict[str, Any], serve: Callable[[Consumer], str]
) -> None:
    consumer = _consumer(clean_stack["project"])  # no routes at all
    url = serve(consumer)
    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests")
    data, attributes = encode_for_pubsub(event)

    def push(attrs: dict[str, str]) -> requests.Response:
        message = {"data": base64.b64encode(data).decode(), "attributes": attrs, "messageId": uuid.uuid4().hex}
        return requests.post(url, json={"message": message, "subscription": "s"}, timeout=10)

    ignored = push(attributes)
    unknown = push({**attributes, "ce-type": "shop.order.placed.v9"})

    assert (ignored.status_code, ignored.json()["status"]) == (200, "ignored")
    assert (unknown.status_code, unknown.json()["status"], unknown.json()["reason"]) == (
        200,
        "rejected",
        "unknown_event_type",
    )
    assert len(list(consumer.db.collection("failures").stream())) == 1
    record = consumer.db.collection("failures").document(unknown.json()["failure_id"]).get().to_dict()
    assert (record["reason"], record["attributes"]["ce-type"]) == ("unknown_event_type", "shop.order.placed.v9")


def test_failure_that_cannot_be_recorded_is_retried_not_lost(
    clean_stack: dict[str, Any], serve: Callable[[Consumer], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = _consumer(clean_stack["project"])
    url = serve(consumer)

    def unavailable(*_: Any) -> str:
        raise ConnectionError("firestore unreachable")

    monkeypatch.setattr(consumer.failures, "record", unavailable)
    response = requests.post(url, data=b"garbage", timeout=10)

    assert response.status_code == 503
    assert response.json()["reason"] == "failure_not_recorded"
