"""Publishing domain events as CloudEvents to the real Pub/Sub emulator, and reading them back."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from google.cloud import pubsub_v1

import eventkit.publish
from eventkit.catalog import CATALOG, ORDER_PLACED
from eventkit.config import Config
from eventkit.errors import RetryableError
from eventkit.events import decode_pubsub_attributes
from eventkit.publish import Publisher, send
from eventkit.structured_log import log_context
from eventkit.trace import TraceContext

ORDER = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": 250}],
    "total": 500,
    "currency": "EUR",
}


def _topic_with_pull_subscription(project: str) -> tuple[str, str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    topic = pubsub_v1.PublisherClient().create_topic(name=f"projects/{project}/topics/{name}").name
    subscription = (
        pubsub_v1.SubscriberClient()
        .create_subscription(name=f"projects/{project}/subscriptions/{name}-pull", topic=topic)
        .name
    )
    return name, subscription


def _pull_one(subscription: str) -> Any:
    subscriber = pubsub_v1.SubscriberClient()
    response = subscriber.pull(subscription=subscription, max_messages=1, timeout=10)
    assert len(response.received_messages) == 1
    received = response.received_messages[0]
    subscriber.acknowledge(subscription=subscription, ack_ids=[received.ack_id])
    return received.message


def test_published_event_arrives_in_the_binary_binding_with_the_callers_trace(stack: dict[str, Any]) -> None:
    topic, subscription = _topic_with_pull_subscription(stack["project"])
    config = Config(project=stack["project"], service="orders", topics={"order-events": topic})
    publisher = Publisher(config, CATALOG)
    caller = TraceContext.new()

    with log_context(trace=caller):
        event = publisher.event(ORDER_PLACED, ORDER, subject="orders/o-1")
        message_id = publisher.publish("order-events", event, ordering_key="o-1")

    message = _pull_one(subscription)
    attributes = dict(message.attributes)
    assert message.message_id == message_id
    assert message.ordering_key == "o-1"
    assert attributes["ce-id"] == event.id
    assert attributes["ce-type"] == ORDER_PLACED
    assert attributes["ce-specversion"] == "1.0"
    assert attributes["ce-source"] == "//shop/services/orders"
    assert attributes["content-type"] == "application/json"
    assert attributes["ce-time"].endswith("Z")
    trace_id = attributes["ce-traceparent"].split("-")[1]
    assert trace_id == caller.trace_id  # same trace, a child span
    decoded = decode_pubsub_attributes(CATALOG, attributes, message.data)
    assert decoded.id == event.id
    assert decoded.subject == "orders/o-1"
    assert decoded.data_json() == ORDER


def test_republishing_with_the_same_event_id_keeps_the_id(stack: dict[str, Any]) -> None:
    topic, subscription = _topic_with_pull_subscription(stack["project"])
    config = Config(project=stack["project"], service="orders", topics={"order-events": topic})
    publisher = Publisher(config, CATALOG)

    event = publisher.event(ORDER_PLACED, ORDER, event_id="fixed-id-1")
    publisher.publish("order-events", event)

    assert dict(_pull_one(subscription).attributes)["ce-id"] == "fixed-id-1"


def test_a_lone_publish_carries_its_ordering_key(stack: dict[str, Any]) -> None:
    topic, subscription = _topic_with_pull_subscription(stack["project"])
    config = Config(project=stack["project"], service="orders", topics={"order-events": topic})
    publisher = Publisher(config, CATALOG)

    message_id = publisher.publish("order-events", publisher.event(ORDER_PLACED, ORDER), ordering_key="orders/o-1")

    received = _pull_one(subscription)
    assert (received.message_id, received.ordering_key) == (message_id, "orders/o-1")


def test_a_publish_to_a_missing_topic_is_a_retryable_error_naming_the_event(stack: dict[str, Any]) -> None:
    config = Config(project=stack["project"], service="orders", topics={"order-events": f"gone-{uuid.uuid4().hex}"})
    publisher = Publisher(config, CATALOG)
    event = publisher.event(ORDER_PLACED, ORDER)

    with pytest.raises(RetryableError, match=f"publishing {ORDER_PLACED} {event.id} to .*gone-.* failed: NotFound"):
        publisher.publish("order-events", event, timeout=5)


def test_publishes_from_many_threads_share_publish_calls_and_each_gets_its_own_message_id(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, subscription = _topic_with_pull_subscription(stack["project"])
    topic_path = f"projects/{stack['project']}/topics/{topic}"
    calls: list[int] = []

    def counted(path: str, messages: list[Any], timeout: float) -> list[str]:
        calls.append(len(messages))
        return real(path, messages, timeout)

    real = eventkit.publish.publish_call
    monkeypatch.setattr(eventkit.publish, "publish_call", counted)
    eventkit.publish._groups.cache_clear()  # a fresh PublishGroups, calling the counted function
    try:
        with ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(lambda n: send(topic_path, b"{}", {"ce-id": f"m-{n}"}, log_line=False), range(160)))
    finally:
        eventkit.publish._groups.cache_clear()

    assert sum(calls) == 160 and len(calls) < 160  # every message sent once; some calls carried several
    assert len(set(ids)) == 160
    received: dict[str, str] = {}
    subscriber = pubsub_v1.SubscriberClient()
    while len(received) < 160:
        response = subscriber.pull(subscription=subscription, max_messages=100, timeout=10)
        assert response.received_messages, f"only {len(received)} of 160 messages arrived"
        for item in response.received_messages:
            received[item.message.attributes["ce-id"]] = item.message.message_id
        subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
    assert [received[f"m-{n}"] for n in range(160)] == ids  # each caller was told its own message's id
