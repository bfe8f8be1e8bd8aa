"""read_delivery: every form a consumer's endpoint receives, read into one typed Delivery (or a PermanentError).

Fixtures are in tests/fixtures/deliveries (see its README for the Google documentation each shape follows).
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventkit.catalog import CATALOG, ORDER_PLACED, OrderPlaced
from eventkit.delivery import MESSAGE_PUBLISHED_TYPE, Delivery, Transport, read_delivery
from eventkit.errors import (
    InvalidPayloadError,
    MalformedDeliveryError,
    PayloadTooLargeError,
    PermanentError,
    UnknownEventTypeError,
)
from eventkit.events import encode_for_pubsub, new_event
from eventkit.storage_object import FINALIZED_TYPE
from eventkit.trace import TraceContext

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deliveries"

# The traces the fixtures carry.
TP_EVENT = "00-5d1e3b0c9a8f47e2b6c4d2a1f0e9d8c7-a1b2c3d4e5f60718-01"
TP_HTTP = "00-7f305d2ebca169a4d8e6f4c3b2a1f0e9-99aabbccddeeff00-01"
TP_ATTRIBUTE = "00-6e2f4c1dab9058f3c7d5e3b2a1f0e9d8-1122334455667788-01"
CLOUD_TRACE = "8a4b6c2d0e1f30425364758697a8b9ca/12345678901234567;o=1"  # span 12345678901234567 = 0x2bdc545d6b4b87

ORDER = {
    "order_id": "ord-1",
    "customer_id": "cus-1",
    "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 500}],
    "total": 500,
    "currency": "EUR",
}


def load(name: str) -> tuple[dict[str, str], bytes]:
    """A fixture as (headers, body bytes): a {"headers", "body"} request, or a raw push body sent as JSON."""
    raw = json.loads((FIXTURES / name).read_text())
    if isinstance(raw, dict) and set(raw) == {"headers", "body"}:
        headers, body = raw["headers"], raw["body"]
    else:
        headers, body = {"content-type": "application/json"}, raw
    return dict(headers), body.encode() if isinstance(body, str) else json.dumps(body).encode()


def read(name: str, **kwargs: Any) -> Delivery:
    headers, body = load(name)
    return read_delivery(headers, body, CATALOG, **kwargs)


def b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.b64encode(raw).decode()


def push_body(attributes: dict[str, str], data: Any = None, **message: Any) -> bytes:
    msg: dict[str, Any] = {"messageId": "1001", "attributes": attributes, **message}
    if data is not None:
        msg["data"] = b64(data)
    return json.dumps({"message": msg, "subscription": "projects/p/subscriptions/s"}).encode()


def binary_attributes(**overrides: str) -> dict[str, str]:
    attrs = {
        "ce-specversion": "1.0",
        "ce-id": "evt-1",
        "ce-source": "//test/orders",
        "ce-type": ORDER_PLACED,
        "content-type": "application/json",
    }
    attrs.update(overrides)
    return {k: v for k, v in attrs.items() if v is not None}


def structured_event(**overrides: Any) -> dict[str, Any]:
    event = {"specversion": "1.0", "id": "evt-2", "source": "//test/orders", "type": ORDER_PLACED, "data": ORDER}
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not None}


STRUCTURED = {"content-type": "application/cloudevents+json; charset=utf-8"}


# --------------------------------------------------------------------------------------------- raw Pub/Sub push


def test_raw_push_binary_event_keeps_message_id_publish_time_ordering_key_attempt_and_subscription():
    delivery = read("push_binary_order_placed.json")

    assert delivery.transport is Transport.PUBSUB_PUSH
    assert delivery.object is None
    assert delivery.envelope_id is None
    message = delivery.message
    assert message is not None
    assert message.message_id == "11223344556677"
    assert message.publish_time == datetime(2024, 5, 1, 9, 30, 12, 901000, tzinfo=UTC)
    assert message.ordering_key == "cus-7f3a"
    assert message.delivery_attempt == 3
    assert message.subscription == "projects/shop-dev/subscriptions/fulfilment-order-placed"


def test_raw_push_binary_event_keeps_every_attribute_including_non_cloudevent_ones():
    message = read("push_binary_order_placed.json").message

    assert message is not None
    assert message.attributes["origin"] == "checkout-web"
    assert message.attributes["ce-type"] == ORDER_PLACED
    assert message.attributes["content-type"] == "application/json; charset=utf-8"
    assert json.loads(message.data)["order_id"] == "ord-20240501-0001"


def test_raw_push_binary_event_decodes_the_domain_event():
    delivery = read("push_binary_order_placed.json")

    event = delivery.event
    assert event is not None
    assert event.id == "evt-0b7c2e6a-placed"
    assert event.type == ORDER_PLACED
    assert event.source == "//shop.example/services/orders"
    assert event.subject == "orders/ord-20240501-0001"
    assert event.time == datetime(2024, 5, 1, 9, 30, 12, 345000, tzinfo=UTC)
    assert isinstance(event.data, OrderPlaced)
    assert event.data.items[0].sku == "MUG-BLUE-350"
    assert event.data.total == 4499
    assert delivery.key == "evt-0b7c2e6a-placed"
    assert delivery.kind == ORDER_PLACED


def test_raw_push_reads_snake_case_only_message_fields():
    body = json.dumps(
        {
            "message": {
                "attributes": binary_attributes(),
                "data": b64(ORDER),
                "message_id": "snake-1",
                "publish_time": "2024-05-01T00:00:01.5Z",
                "ordering_key": "cus-1",
            },
            "subscription": "projects/p/subscriptions/s",
            "delivery_attempt": 5,
        }
    ).encode()

    message = read_delivery({}, body, CATALOG).message

    assert message is not None
    assert message.message_id == "snake-1"
    assert message.publish_time == datetime(2024, 5, 1, 0, 0, 1, 500000, tzinfo=UTC)
    assert message.ordering_key == "cus-1"
    assert message.delivery_attempt == 5


def test_raw_push_without_dead_letter_policy_or_ordering_has_no_attempt_and_no_ordering_key():
    delivery = read("push_structured_order_placed.json")

    assert delivery.message is not None
    assert delivery.message.delivery_attempt is None
    assert delivery.message.ordering_key is None


def test_raw_push_structured_binding_decodes_the_whole_event_from_data():
    delivery = read("push_structured_order_placed.json")

    assert delivery.transport is Transport.PUBSUB_PUSH
    event = delivery.event
    assert event is not None
    assert event.id == "evt-4d1f9a33-placed"
    assert event.subject == "orders/ord-20240501-0002"
    assert event.time == datetime(2024, 5, 1, 10, 2, 44, 500000, tzinfo=UTC)
    assert event.traceparent == TP_EVENT
    assert event.data_json()["currency"] == "GBP"
    assert "gift_wrap" not in event.data_json()  # tolerant reader: unknown producer fields are dropped
    assert delivery.message is not None
    assert delivery.message.message_id == "22334455667788"


def test_raw_push_structured_binding_that_also_carries_ce_attributes_reads_the_payload():
    # The Pub/Sub binding (3.2.3) lets a structured message repeat the ce-* attributes; content-type decides.
    event = structured_event(id="evt-both", time="2024-05-01T00:00:00Z")
    attributes = {**STRUCTURED, **binary_attributes(**{"ce-id": "evt-both", "content-type": None})}
    delivery = read_delivery({}, push_body(attributes, event), CATALOG)

    assert delivery.event is not None
    assert delivery.event.id == "evt-both"
    assert delivery.event.data_json() == ORDER


def test_raw_push_binary_binding_accepts_ce_datacontenttype_attribute():
    attributes = binary_attributes(**{"content-type": None, "ce-datacontenttype": "application/json; charset=utf-8"})
    delivery = read_delivery({}, push_body(attributes, ORDER), CATALOG)

    assert delivery.event is not None
    assert delivery.event.data_json() == ORDER


def test_raw_push_of_an_event_built_by_encode_for_pubsub_reads_back_the_same_event():
    event = new_event(
        CATALOG,
        ORDER_PLACED,
        ORDER,
        source="//test/orders",
        subject="orders/ord-1",
        event_id="evt-encoded",
        traceparent=TP_EVENT,
        time=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )
    data, attributes = encode_for_pubsub(event)
    body = json.dumps(
        {
            "message": {"attributes": attributes, "data": b64(data), "messageId": "m-9", "message_id": "m-9"},
            "subscription": "projects/p/subscriptions/s",
        }
    ).encode()

    delivery = read_delivery({"content-type": "application/json"}, body, CATALOG)

    assert delivery.event is not None
    assert (delivery.event.id, delivery.event.type, delivery.event.source) == (event.id, event.type, event.source)
    assert delivery.event.subject == "orders/ord-1"
    assert delivery.event.time == event.time
    assert delivery.event.data == event.data
    assert delivery.trace == TraceContext("5d1e3b0c9a8f47e2b6c4d2a1f0e9d8c7", "a1b2c3d4e5f60718", True)


def test_raw_push_accepts_url_safe_base64_data():
    raw = json.dumps({**ORDER, "order_id": "ord-~~~>>>???"}).encode()
    url_safe = base64.urlsafe_b64encode(raw).decode()
    assert "-" in url_safe or "_" in url_safe  # the point of this test
    body = json.dumps({"message": {"messageId": "1", "attributes": binary_attributes(), "data": url_safe}}).encode()

    delivery = read_delivery({}, body, CATALOG)

    assert delivery.event is not None
    assert delivery.event.data_json()["order_id"] == "ord-~~~>>>???"


# ------------------------------------------------------------------------------------ Eventarc messagePublished


def test_eventarc_binary_message_published_keeps_subscription_and_ordering_key():
    delivery = read("eventarc_pubsub_binary.json")

    assert delivery.transport is Transport.EVENTARC_PUBSUB
    assert delivery.envelope_id == "9876543210123"
    message = delivery.message
    assert message is not None
    assert message.subscription == "projects/shop-dev/subscriptions/eventarc-europe-west1-orders-trigger-sub-042"
    assert message.ordering_key == "cus-7f3a"
    assert message.message_id == "9876543210123"
    assert message.publish_time == datetime(2024, 5, 1, 9, 30, 12, 901000, tzinfo=UTC)
    assert message.attributes["ce-id"] == "evt-0b7c2e6a-placed"


def test_eventarc_binary_message_published_decodes_the_inner_binary_domain_event():
    delivery = read("eventarc_pubsub_binary.json")

    assert delivery.event is not None
    assert delivery.event.id == "evt-0b7c2e6a-placed"  # the domain id, not the Eventarc/message id
    assert delivery.key == "evt-0b7c2e6a-placed"
    assert delivery.event.data_json()["items"][1]["sku"] == "TEE-L-BLACK"


def test_eventarc_structured_message_published_decodes_the_inner_structured_domain_event():
    delivery = read("eventarc_pubsub_structured.json")

    assert delivery.transport is Transport.EVENTARC_PUBSUB
    assert delivery.envelope_id == "9876543210456"
    assert delivery.message is not None
    assert delivery.message.subscription == (
        "projects/shop-dev/subscriptions/eventarc-europe-west1-analytics-trigger-sub-007"
    )
    assert delivery.event is not None
    assert delivery.event.id == "evt-4d1f9a33-placed"
    assert delivery.event.data_json()["order_id"] == "ord-20240501-0002"


def test_eventarc_headers_are_read_whatever_their_case():
    headers, body = load("eventarc_pubsub_binary.json")
    title_case = {"-".join(part.capitalize() for part in name.split("-")): value for name, value in headers.items()}
    assert "Ce-Type" in title_case

    delivery = read_delivery(title_case, body, CATALOG)

    assert delivery.transport is Transport.EVENTARC_PUBSUB
    assert delivery.event is not None
    assert delivery.event.id == "evt-0b7c2e6a-placed"


def test_eventarc_message_published_can_carry_a_storage_notification():
    _, notification = load("gcs_notification_none.json")
    envelope = json.loads(notification)
    headers = {
        "ce-id": "555",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/uploads",
        "ce-specversion": "1.0",
        "ce-type": MESSAGE_PUBLISHED_TYPE,
        "content-type": "application/json",
    }

    delivery = read_delivery(headers, json.dumps(envelope).encode(), CATALOG)

    assert delivery.transport is Transport.EVENTARC_PUBSUB
    assert delivery.object is not None
    assert delivery.object.name == "invoices/2024/05/ord-20240501-0001.pdf"
    assert delivery.kind == FINALIZED_TYPE


# ----------------------------------------------------------------------------------- Eventarc storage finalized


def test_eventarc_binary_storage_finalized_parses_string_generation_and_size_to_int():
    delivery = read("eventarc_storage_finalized_binary.json")

    assert delivery.transport is Transport.EVENTARC_STORAGE
    assert delivery.event is None
    assert delivery.message is None
    assert delivery.envelope_id == "10394857261234"
    obj = delivery.object
    assert obj is not None
    assert obj.bucket == "shop-dev-uploads"
    assert obj.name == "products/MUG-BLUE-350/photo.jpg"
    assert obj.generation == 1714556000123456
    assert obj.metageneration == 1
    assert obj.size == 48213
    assert obj.content_type == "image/jpeg"
    assert obj.metadata == {"uploaded-by": "cus-7f3a", "sku": "MUG-BLUE-350"}
    assert obj.time_created == datetime(2024, 5, 1, 9, 33, 20, 123000, tzinfo=UTC)
    assert obj.md5_hash == "q3Jz7d0c9b8a7f6e5d4c3b=="
    assert obj.crc32c == "yZRlqg=="


def test_eventarc_storage_finalized_key_is_bucket_name_and_generation():
    delivery = read("eventarc_storage_finalized_binary.json")

    assert delivery.key == "shop-dev-uploads/products/MUG-BLUE-350/photo.jpg#1714556000123456"
    assert delivery.kind == FINALIZED_TYPE


def test_eventarc_structured_storage_finalized_reads_the_object():
    delivery = read("eventarc_storage_finalized_structured.json")

    assert delivery.transport is Transport.EVENTARC_STORAGE
    assert delivery.envelope_id == "10394857269999"
    obj = delivery.object
    assert obj is not None
    assert (obj.bucket, obj.name) == ("shop-dev-uploads", "invoices/2024/05/ord-20240501-0001.pdf")
    assert (obj.generation, obj.size) == (1714557111222333, 120044)
    assert obj.content_type == "application/pdf"
    assert obj.metadata == {"order-id": "ord-20240501-0001"}


def test_eventarc_storage_data_with_numeric_generation_and_size_is_read_too():
    headers, body = load("eventarc_storage_finalized_binary.json")
    data = json.loads(body) | {"generation": 42, "size": 0, "metageneration": 3}

    obj = read_delivery(headers, json.dumps(data).encode(), CATALOG).object

    assert obj is not None
    assert (obj.generation, obj.size, obj.metageneration) == (42, 0, 3)


# ----------------------------------------------------------------------- Cloud Storage notifications via push


def test_gcs_notification_json_api_v1_via_push_reads_the_object_resource():
    delivery = read("gcs_notification_json_api_v1.json")

    assert delivery.transport is Transport.PUBSUB_PUSH
    assert delivery.event is None
    obj = delivery.object
    assert obj is not None
    assert (obj.bucket, obj.name, obj.generation) == (
        "shop-dev-uploads",
        "products/MUG-BLUE-350/photo.jpg",
        1714556000123456,
    )
    assert obj.size == 48213
    assert obj.content_type == "image/jpeg"
    assert obj.metadata["sku"] == "MUG-BLUE-350"
    assert delivery.message is not None
    assert delivery.message.attributes["notificationConfig"].endswith("/notificationConfigs/7")
    assert delivery.message.delivery_attempt == 1
    assert delivery.kind == FINALIZED_TYPE
    assert delivery.key == "shop-dev-uploads/products/MUG-BLUE-350/photo.jpg#1714556000123456"


def test_gcs_notification_none_via_push_reads_the_object_from_attributes_only():
    delivery = read("gcs_notification_none.json")

    assert delivery.transport is Transport.PUBSUB_PUSH
    obj = delivery.object
    assert obj is not None
    assert (obj.bucket, obj.name, obj.generation) == (
        "shop-dev-uploads",
        "invoices/2024/05/ord-20240501-0001.pdf",
        1714557111222333,
    )
    assert obj.size is None
    assert obj.content_type is None
    assert obj.metadata == {}
    assert delivery.message is not None
    assert delivery.message.data == b""


def test_gcs_notification_whose_data_names_another_object_than_its_attributes_is_malformed():
    headers, body = load("gcs_notification_json_api_v1.json")
    envelope = json.loads(body)
    envelope["message"]["attributes"]["objectId"] = "products/OTHER/photo.jpg"

    with pytest.raises(MalformedDeliveryError, match=re.escape("products/OTHER/photo.jpg")):
        read_delivery(headers, json.dumps(envelope).encode(), CATALOG)


# --------------------------------------------------------------------------- domain CloudEvent straight over HTTP


def test_domain_cloudevent_over_http_binary_mode():
    delivery = read("cloudevent_http_binary_order_placed.json")

    assert delivery.transport is Transport.CLOUDEVENT_HTTP
    assert delivery.message is None
    assert delivery.envelope_id is None
    event = delivery.event
    assert event is not None
    assert event.id == "evt-0b7c2e6a-placed"
    assert event.subject == "orders/ord-20240501-0001"
    assert event.traceparent == TP_EVENT
    assert event.data_json()["total"] == 4499


def test_domain_cloudevent_over_http_structured_mode():
    delivery = read("cloudevent_http_structured_order_placed.json")

    assert delivery.transport is Transport.CLOUDEVENT_HTTP
    event = delivery.event
    assert event is not None
    assert event.id == "evt-4d1f9a33-placed"
    assert event.source == "//shop.example/services/orders"
    assert event.data_json()["items"] == [{"sku": "POSTER-A2", "quantity": 3, "unit_price": 800}]


def test_structured_cloudevent_sent_with_plain_json_content_type_is_read_as_a_cloudevent():
    _, body = load("cloudevent_http_structured_order_placed.json")

    delivery = read_delivery({"content-type": "application/json"}, body, CATALOG)

    assert delivery.transport is Transport.CLOUDEVENT_HTTP
    assert delivery.event is not None
    assert delivery.event.id == "evt-4d1f9a33-placed"


# ------------------------------------------------------------------------------------------- trace precedence


def _trace_case(event_tp: str | None, attribute_tp: str | None, http_tp: str | None, cloud: str | None):
    """A structured-binding push delivery with a trace at each of the four levels (or not)."""
    attributes = dict(STRUCTURED)
    if attribute_tp:
        attributes["googclient_traceparent"] = attribute_tp
    headers = {"content-type": "application/json"}
    if http_tp:
        headers["traceparent"] = http_tp
    if cloud:
        headers["X-Cloud-Trace-Context"] = cloud
    return read_delivery(headers, push_body(attributes, structured_event(traceparent=event_tp)), CATALOG)


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ((TP_EVENT, TP_ATTRIBUTE, TP_HTTP, CLOUD_TRACE), ("5d1e3b0c9a8f47e2b6c4d2a1f0e9d8c7", "a1b2c3d4e5f60718")),
        ((None, TP_ATTRIBUTE, TP_HTTP, CLOUD_TRACE), ("6e2f4c1dab9058f3c7d5e3b2a1f0e9d8", "1122334455667788")),
        ((None, None, TP_HTTP, CLOUD_TRACE), ("7f305d2ebca169a4d8e6f4c3b2a1f0e9", "99aabbccddeeff00")),
        ((None, None, None, CLOUD_TRACE), ("8a4b6c2d0e1f30425364758697a8b9ca", "002bdc545d6b4b87")),
    ],
    ids=["event-wins", "attribute-over-http", "traceparent-over-cloud-trace", "cloud-trace-last"],
)
def test_trace_precedence_event_then_message_attribute_then_http_traceparent_then_cloud_trace(levels, expected):
    trace = _trace_case(*levels).trace

    assert trace is not None
    assert (trace.trace_id, trace.span_id) == expected


def test_trace_is_none_when_nothing_carries_one():
    assert _trace_case(None, None, None, None).trace is None


def test_trace_invalid_event_traceparent_falls_back_to_the_message_attribute():
    all_zero = "00-00000000000000000000000000000000-a1b2c3d4e5f60718-01"

    trace = _trace_case(all_zero, TP_ATTRIBUTE, TP_HTTP, None).trace

    assert trace is not None
    assert trace.trace_id == "6e2f4c1dab9058f3c7d5e3b2a1f0e9d8"


def test_trace_binary_binding_event_traceparent_beats_a_bare_traceparent_attribute():
    attributes = binary_attributes(**{"ce-traceparent": TP_EVENT, "traceparent": TP_ATTRIBUTE})

    delivery = read_delivery({"traceparent": TP_HTTP}, push_body(attributes, ORDER), CATALOG)

    assert delivery.trace is not None
    assert delivery.trace.trace_id == "5d1e3b0c9a8f47e2b6c4d2a1f0e9d8c7"


def test_trace_eventarc_inner_event_traceparent_beats_eventarc_http_traceparent():
    headers, body = load("eventarc_pubsub_binary.json")
    envelope = json.loads(body)
    envelope["message"]["attributes"]["ce-traceparent"] = TP_EVENT

    delivery = read_delivery(headers, json.dumps(envelope).encode(), CATALOG)

    assert headers["traceparent"] == TP_HTTP
    assert delivery.trace is not None
    assert delivery.trace.trace_id == "5d1e3b0c9a8f47e2b6c4d2a1f0e9d8c7"


def test_trace_eventarc_message_without_event_trace_uses_eventarc_http_traceparent():
    delivery = read("eventarc_pubsub_binary.json")

    assert delivery.trace == TraceContext("7f305d2ebca169a4d8e6f4c3b2a1f0e9", "99aabbccddeeff00", True)


def test_trace_http_cloudevent_prefers_ce_traceparent_over_cloud_run_traceparent():
    delivery = read("cloudevent_http_binary_order_placed.json")

    assert delivery.trace == TraceContext("5d1e3b0c9a8f47e2b6c4d2a1f0e9d8c7", "a1b2c3d4e5f60718", True)


def test_trace_http_cloudevent_without_event_trace_uses_http_traceparent():
    headers, body = load("cloudevent_http_structured_order_placed.json")
    event = json.loads(body)
    del event["traceparent"]

    delivery = read_delivery(headers, json.dumps(event).encode(), CATALOG)

    assert delivery.trace is not None
    assert delivery.trace.trace_id == "7f305d2ebca169a4d8e6f4c3b2a1f0e9"


def test_trace_storage_notification_prefers_message_attribute_over_http():
    headers, body = load("gcs_notification_none.json")
    envelope = json.loads(body)
    envelope["message"]["attributes"]["googclient_traceparent"] = TP_ATTRIBUTE

    with_attribute = read_delivery({**headers, "traceparent": TP_HTTP}, json.dumps(envelope).encode(), CATALOG)
    without = read_delivery({**headers, "traceparent": TP_HTTP}, body, CATALOG)

    assert with_attribute.trace is not None and with_attribute.trace.trace_id == "6e2f4c1dab9058f3c7d5e3b2a1f0e9d8"
    assert without.trace is not None and without.trace.trace_id == "7f305d2ebca169a4d8e6f4c3b2a1f0e9"


def test_trace_eventarc_storage_uses_the_http_traceparent():
    delivery = read("eventarc_storage_finalized_binary.json")

    assert delivery.trace is not None
    assert delivery.trace.trace_id == "7f305d2ebca169a4d8e6f4c3b2a1f0e9"


# ------------------------------------------------------------------------------------------ permanent failures

JSON = {"content-type": "application/json"}
BINARY_CE_HEADERS = {
    "ce-specversion": "1.0",
    "ce-id": "evt-http",
    "ce-source": "//test",
    "ce-type": ORDER_PLACED,
    "content-type": "application/json",
}


def _push(message: dict[str, Any]) -> bytes:
    return json.dumps({"message": message, "subscription": "projects/p/subscriptions/s"}).encode()


FAILURES = [
    pytest.param(JSON, b"", MalformedDeliveryError, "body is empty", id="empty-body"),
    pytest.param(JSON, b"<html>502</html>", MalformedDeliveryError, "not JSON", id="non-json"),
    pytest.param(JSON, b"\xff\xfe\x00garbage", MalformedDeliveryError, "not JSON", id="non-utf8"),
    pytest.param(JSON, b"[1, 2, 3]", MalformedDeliveryError, "neither a Pub/Sub push body", id="json-array"),
    pytest.param(JSON, b'"hello"', MalformedDeliveryError, "neither a Pub/Sub push body", id="json-string"),
    pytest.param(
        JSON,
        b'{"subscription": "projects/p/subscriptions/s"}',
        MalformedDeliveryError,
        "neither a Pub/Sub push body",
        id="push-without-message",
    ),
    pytest.param(JSON, b'{"message": null}', MalformedDeliveryError, "no 'message' object", id="message-null"),
    pytest.param(JSON, b'{"message": "hi"}', MalformedDeliveryError, "no 'message' object", id="message-string"),
    pytest.param(
        JSON, _push({"data": b64(ORDER)}), MalformedDeliveryError, "messageId: is required", id="no-message-id"
    ),
    pytest.param(
        JSON,
        _push({"messageId": "", "data": b64(ORDER)}),
        MalformedDeliveryError,
        "messageId",
        id="empty-message-id",
    ),
    pytest.param(
        JSON,
        _push({"messageId": "1", "data": "abcde", "attributes": binary_attributes()}),
        MalformedDeliveryError,
        "message.data: .*base64",
        id="base64-impossible-length",
    ),
    pytest.param(
        JSON,
        _push({"messageId": "1", "data": "@@@@", "attributes": binary_attributes()}),
        MalformedDeliveryError,
        "message.data: .*base64",
        id="base64-not-an-alphabet",
    ),
    pytest.param(
        JSON,
        _push({"messageId": "1", "data": 12, "attributes": binary_attributes()}),
        MalformedDeliveryError,
        "message.data: .*base64 string",
        id="data-not-a-string",
    ),
    pytest.param(
        JSON,
        _push({"messageId": "1", "attributes": {"count": 3, "ok": "yes"}}),
        MalformedDeliveryError,
        "message.attributes: .*must be strings; not for count",
        id="attributes-not-strings",
    ),
    pytest.param(
        JSON,
        _push({"messageId": "1", "attributes": ["a"]}),
        MalformedDeliveryError,
        "message.attributes: .*object of strings",
        id="attributes-not-an-object",
    ),
    pytest.param(
        JSON,
        _push({"messageId": "1", "attributes": {"kind": "order"}, "data": b64(ORDER)}),
        MalformedDeliveryError,
        "message is not a CloudEvent",
        id="not-a-cloudevent",
    ),
    pytest.param(
        JSON,
        _push({"messageId": "1", "attributes": binary_attributes(), "data": b64(b"not json")}),
        MalformedDeliveryError,
        "not JSON",
        id="pubsub-cloudevent-data-not-json",
    ),
    pytest.param(
        JSON,
        _push({"messageId": "1", "attributes": binary_attributes(**{"ce-time": "last tuesday"}), "data": b64(ORDER)}),
        MalformedDeliveryError,
        "'time' is not RFC 3339",
        id="bad-ce-time",
    ),
    pytest.param(
        JSON,
        _push({"messageId": "1", "attributes": binary_attributes(**{"content-type": "text/csv"}), "data": b64(ORDER)}),
        InvalidPayloadError,
        "content type 'text/csv'",
        id="non-json-datacontenttype",
    ),
    pytest.param(
        BINARY_CE_HEADERS,
        b"",
        InvalidPayloadError,
        ORDER_PLACED,
        id="http-cloudevent-without-data",
    ),
    pytest.param(STRUCTURED, b"[1]", MalformedDeliveryError, "must be a JSON object", id="structured-body-not-object"),
    pytest.param(
        STRUCTURED,
        json.dumps(structured_event(specversion="2.0")).encode(),
        MalformedDeliveryError,
        "not a valid CloudEvent: .*specversion",
        id="unknown-specversion",
    ),
    pytest.param(
        STRUCTURED,
        json.dumps(structured_event(id=None)).encode(),
        MalformedDeliveryError,
        "not a valid CloudEvent: .*id",
        id="structured-without-id",
    ),
    pytest.param(
        {**BINARY_CE_HEADERS, "ce-type": MESSAGE_PUBLISHED_TYPE},
        b'{"subscription": "projects/p/subscriptions/s"}',
        MalformedDeliveryError,
        "no 'message' object",
        id="eventarc-pubsub-data-without-message",
    ),
    pytest.param(
        {**BINARY_CE_HEADERS, "ce-type": FINALIZED_TYPE},
        b'["bucket"]',
        MalformedDeliveryError,
        "storage object data must be a JSON object",
        id="eventarc-storage-data-not-object",
    ),
    pytest.param(
        {**BINARY_CE_HEADERS, "ce-type": FINALIZED_TYPE},
        b'{"bucket": "b", "name": "n", "generation": "one"}',
        MalformedDeliveryError,
        "object.generation",
        id="eventarc-storage-generation-not-a-number",
    ),
]


@pytest.mark.parametrize(("headers", "body", "error", "message"), FAILURES)
def test_unreadable_delivery_fails_permanently_naming_the_cause(headers, body, error, message):
    with pytest.raises(error, match=message):
        read_delivery(headers, body, CATALOG)


def test_unknown_ce_type_is_an_unknown_event_type_naming_the_type_and_the_known_ones():
    with pytest.raises(
        UnknownEventTypeError, match=r"'shop\.order\.placed\.v9'.*known: .*shop\.order\.placed\.v1"
    ) as e:
        read("push_binary_unknown_type.json")
    assert e.value.reason == "unknown_event_type"


def test_unknown_type_in_a_structured_http_cloudevent_is_an_unknown_event_type():
    body = json.dumps(structured_event(type="shop.order.archived.v1")).encode()

    with pytest.raises(UnknownEventTypeError, match=r"unknown event type .shop\.order\.archived\.v1"):
        read_delivery(STRUCTURED, body, CATALOG)


def test_invalid_payload_names_the_field_path():
    with pytest.raises(InvalidPayloadError, match=r"items\[0\]\.quantity") as e:
        read("push_binary_invalid_quantity.json")
    assert str(e.value).startswith(f"{ORDER_PLACED} data: ")
    assert "got 0" in str(e.value)
    assert e.value.reason == "invalid_payload"


def test_storage_notification_object_delete_is_an_unknown_event_type():
    with pytest.raises(UnknownEventTypeError, match=r"OBJECT_DELETE.*only OBJECT_FINALIZE"):
        read("gcs_notification_object_delete.json")


def test_cloudevent_data_that_is_not_json_is_malformed():
    with pytest.raises(MalformedDeliveryError, match=r"^CloudEvent data is not JSON: ") as e:
        read("cloudevent_http_binary_data_not_json.json")

    assert "Failed to unmarshall" not in str(e.value)  # not the SDK's wrapper around it


def test_eventarc_message_published_data_that_is_not_json_is_malformed():
    headers = {**BINARY_CE_HEADERS, "ce-type": MESSAGE_PUBLISHED_TYPE}

    with pytest.raises(MalformedDeliveryError, match="CloudEvent data is not JSON"):
        read_delivery(headers, b"subscription=projects/p/subscriptions/s", CATALOG)


def test_body_over_max_bytes_is_payload_too_large_before_anything_is_parsed():
    _, body = load("push_binary_order_placed.json")

    with pytest.raises(PayloadTooLargeError, match=f"{len(body)} bytes; the limit is {len(body) - 1}") as e:
        read_delivery({}, body, CATALOG, max_bytes=len(body) - 1)
    assert e.value.reason == "payload_too_large"
    with pytest.raises(PayloadTooLargeError):
        read_delivery({}, b"not even json" * 10, CATALOG, max_bytes=10)


def test_body_of_exactly_max_bytes_is_read():
    _, body = load("push_binary_order_placed.json")

    assert read_delivery({}, body, CATALOG, max_bytes=len(body)).event is not None


def test_malformed_deliveries_carry_the_malformed_delivery_reason():
    with pytest.raises(MalformedDeliveryError) as e:
        read_delivery({}, b"", CATALOG)
    assert e.value.reason == "malformed_delivery"


# ------------------------------------------- inputs that must fail permanently, not with an arbitrary exception
# Each of these raised something other than a PermanentError when written (see the report): the consumer only
# acknowledges PermanentErrors, so anything else becomes a 500 and Pub/Sub redelivers the poison message forever.


def test_deeply_nested_json_body_is_malformed_not_a_recursion_error():
    body = b"[" * 5000 + b"]" * 5000  # 10 kB: well under any request limit

    with pytest.raises(PermanentError):
        read_delivery(JSON, body, CATALOG, max_bytes=1_000_000)


def test_deeply_nested_structured_cloudevent_is_malformed_not_a_recursion_error():
    body = b'{"specversion": "1.0", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}"

    with pytest.raises(PermanentError):
        read_delivery({**STRUCTURED, "ce-type": ORDER_PLACED}, body, CATALOG)


def test_deeply_nested_structured_event_inside_a_push_message_is_malformed_not_a_recursion_error():
    data = b'{"specversion": "1.0", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}"

    with pytest.raises(PermanentError):
        read_delivery(JSON, push_body(dict(STRUCTURED), data), CATALOG)


def test_structured_http_cloudevent_body_that_is_not_utf8_is_malformed_not_a_unicode_error():
    # With a ce-type header the body is not pre-parsed; the SDK's own json.loads meets the bytes.
    with pytest.raises(PermanentError):
        read_delivery({**STRUCTURED, "ce-type": ORDER_PLACED}, b"\x80\x81 not utf-8", CATALOG)


def test_structured_binding_message_data_that_is_not_utf8_is_malformed_not_a_unicode_error():
    with pytest.raises(PermanentError):
        read_delivery(JSON, push_body(dict(STRUCTURED), b"\x80\x81 not utf-8"), CATALOG)


@pytest.mark.parametrize("bad_type", [["shop.order.placed.v1"], {"name": "shop.order.placed.v1"}])
def test_structured_cloudevent_whose_type_is_not_a_string_fails_permanently(bad_type):
    with pytest.raises(PermanentError):
        read_delivery(STRUCTURED, json.dumps(structured_event(type=bad_type)).encode(), CATALOG)


@pytest.mark.parametrize("attribute", ["id", "source", "type"])
def test_structured_cloudevent_with_a_null_required_attribute_is_malformed(attribute):
    # A producer serialising None: the SDK raises a bare ValueError for it.
    body = json.dumps({**structured_event(), attribute: None}).encode()

    with pytest.raises(MalformedDeliveryError, match=attribute):
        read_delivery(STRUCTURED, body, CATALOG)


def test_structured_cloudevent_whose_specversion_is_not_a_string_fails_permanently():
    with pytest.raises(PermanentError):
        read_delivery(STRUCTURED, json.dumps(structured_event(specversion=["1.0"])).encode(), CATALOG)


def test_structured_cloudevent_whose_datacontenttype_is_not_a_string_fails_permanently():
    with pytest.raises(PermanentError):
        read_delivery(STRUCTURED, json.dumps(structured_event(datacontenttype=5)).encode(), CATALOG)


@pytest.mark.parametrize("carrier", ["http", "push"])
def test_structured_cloudevent_whose_traceparent_is_not_a_string_never_escapes_as_another_error(carrier):
    event = structured_event(traceparent=12345)
    if carrier == "http":
        headers, body = STRUCTURED, json.dumps(event).encode()
    else:
        headers, body = JSON, push_body(dict(STRUCTURED), event)

    try:
        delivery = read_delivery(headers, body, CATALOG)
    except PermanentError:
        return
    assert delivery.trace is None


def test_structured_cloudevent_whose_id_is_not_a_string_is_malformed():
    # The id is the idempotency key (a Firestore document id); CloudEvents JSON requires a string.
    with pytest.raises(MalformedDeliveryError, match="'id'"):
        read_delivery(STRUCTURED, json.dumps(structured_event(id=12345)).encode(), CATALOG)


# ------------------------------------------------------------------------------------------- every fixture


def test_every_fixture_is_listed_in_the_fixture_readme_with_its_provenance():
    readme = (FIXTURES / "README.md").read_text()
    names = sorted(p.name for p in FIXTURES.glob("*.json"))

    assert len(names) >= 14
    assert [n for n in names if f"`{n}`" not in readme] == []


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_every_fixture_is_read_or_refused_permanently(name):
    try:
        delivery = read(name)
    except PermanentError:
        return
    assert (delivery.event is None) != (delivery.object is None)


# --------------------------------------------------------------------------------------------- property tests

HEADER_NAMES = st.sampled_from(
    [
        "content-type",
        "Content-Type",
        "ce-specversion",
        "CE-SPECVERSION",
        "ce-id",
        "ce-type",
        "ce-source",
        "ce-time",
        "ce-traceparent",
        "ce-datacontenttype",
        "traceparent",
        "x-cloud-trace-context",
    ]
)
HEADER_VALUES = st.sampled_from(
    [
        "application/json",
        "application/cloudevents+json",
        "application/cloudevents+json; charset=utf-8",
        "text/plain",
        "1.0",
        "0.3",
        ORDER_PLACED,
        MESSAGE_PUBLISHED_TYPE,
        FINALIZED_TYPE,
        TP_EVENT,
        CLOUD_TRACE,
        "",
    ]
)
HEADERS = st.dictionaries(HEADER_NAMES | st.text(max_size=12), HEADER_VALUES | st.text(max_size=40), max_size=8)

KEYS = st.sampled_from(
    [
        "message",
        "subscription",
        "deliveryAttempt",
        "messageId",
        "message_id",
        "publishTime",
        "data",
        "attributes",
        "orderingKey",
        "specversion",
        "id",
        "type",
        "source",
        "time",
        "subject",
        "datacontenttype",
        "data_base64",
        "traceparent",
        "bucket",
        "name",
        "generation",
        "size",
        "metadata",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | HEADER_VALUES
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS | st.text(max_size=8), children, max_size=6),
    max_leaves=30,
)
STRINGS = st.dictionaries(HEADER_NAMES | st.sampled_from(["eventType", "bucketId", "objectId"]), HEADER_VALUES)


@st.composite
def shaped_deliveries(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    """Bodies shaped like the real forms, with arbitrary values where it hurts."""
    event = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "specversion": st.just("1.0") | JSON_VALUES,
                "id": st.just("evt-1") | JSON_VALUES,
                "type": st.sampled_from([ORDER_PLACED, MESSAGE_PUBLISHED_TYPE, FINALIZED_TYPE]) | JSON_VALUES,
                "source": st.just("//s") | JSON_VALUES,
                "time": st.just("2024-05-01T00:00:00Z") | JSON_VALUES,
                "datacontenttype": HEADER_VALUES | JSON_VALUES,
                "traceparent": st.just(TP_EVENT) | JSON_VALUES,
                "data": st.just(ORDER) | JSON_VALUES,
            },
        )
    )
    attributes = draw(STRINGS | st.just(dict(STRUCTURED)) | st.just(binary_attributes()))
    message = draw(
        st.fixed_dictionaries(
            {"messageId": st.just("1") | JSON_VALUES},
            optional={
                "attributes": st.just(attributes) | JSON_VALUES,
                "data": st.just(b64(event)) | st.just(b64(ORDER)) | st.text(max_size=30) | JSON_VALUES,
                "publishTime": st.just("2024-05-01T00:00:00Z") | JSON_VALUES,
                "orderingKey": JSON_VALUES,
            },
        )
    )
    envelope = {"message": message, "subscription": draw(JSON_VALUES), "deliveryAttempt": draw(JSON_VALUES)}
    choice = draw(st.sampled_from(["push", "structured-http", "eventarc-pubsub", "eventarc-storage"]))
    if choice == "push":
        return draw(HEADERS), json.dumps(envelope).encode()
    if choice == "structured-http":
        return dict(STRUCTURED), json.dumps(event).encode()
    ce_type = MESSAGE_PUBLISHED_TYPE if choice == "eventarc-pubsub" else FINALIZED_TYPE
    data = envelope if choice == "eventarc-pubsub" else event.get("data")
    return {**BINARY_CE_HEADERS, "ce-type": ce_type}, json.dumps(data).encode()


PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _read_or_refuse(headers: dict[str, str], body: bytes) -> Delivery | None:
    try:
        delivery = read_delivery(headers, body, CATALOG, max_bytes=64 * 1024)
    except PermanentError as error:
        assert str(error), "a permanent error must say what was wrong"
        return None
    assert (delivery.event is None) != (delivery.object is None)
    return delivery


@pytest.mark.timeout(120)
@PROPERTY
@given(headers=HEADERS, body=st.binary(max_size=512))
def test_arbitrary_bytes_and_headers_only_ever_fail_permanently(headers, body):
    _read_or_refuse(headers, body)


@pytest.mark.timeout(120)
@PROPERTY
@given(headers=HEADERS, value=JSON_VALUES)
def test_arbitrary_json_values_only_ever_fail_permanently(headers, value):
    _read_or_refuse(headers, json.dumps(value).encode())


@pytest.mark.timeout(120)
@PROPERTY
@given(delivery=shaped_deliveries())
def test_delivery_shaped_inputs_with_arbitrary_values_only_ever_fail_permanently(delivery):
    _read_or_refuse(*delivery)
