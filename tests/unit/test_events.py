"""Domain events: the catalog's payload contract and the CloudEvents Pub/Sub binding (encode and decode)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel

from eventkit.catalog import CATALOG, ORDER_PLACED, OrderLine, OrderPlaced, build_catalog
from eventkit.errors import InvalidPayloadError, MalformedDeliveryError, UnknownEventTypeError
from eventkit.events import (
    STRUCTURED_CONTENT_TYPE,
    DomainEvent,
    EventCatalog,
    decode_cloudevent,
    decode_pubsub_attributes,
    encode_for_pubsub,
    new_event,
)

pytestmark = pytest.mark.unit

TRACEPARENT = "00-4a1c8e2f6b9d03e7a5c1f8b2d4e6a9c0-3f2e1d0c9b8a7654-01"
ORDER = {
    "order_id": "ord-42",
    "customer_id": "cus-7",
    "items": [
        {"sku": "MUG-BLUE-350", "quantity": 2, "unit_price": 1250},
        {"sku": "TEE-L-BLACK", "quantity": 1, "unit_price": 1999},
    ],
    "total": 4499,
    "currency": "EUR",
}


def order(**changes: object) -> dict[str, object]:
    return {**json.loads(json.dumps(ORDER)), **changes}


def placed(**kwargs: object) -> DomainEvent:
    defaults: dict[str, object] = {
        "source": "//shop.example/services/orders",
        "subject": "orders/ord-42",
        "event_id": "evt-42",
        "traceparent": TRACEPARENT,
        "time": datetime(2024, 5, 1, 9, 30, 12, 345678, tzinfo=UTC),
    }
    defaults.update(kwargs)
    return new_event(CATALOG, ORDER_PLACED, ORDER, **defaults)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- encode / decode


def test_encode_for_pubsub_uses_the_binary_binding_attribute_names():
    data, attributes = encode_for_pubsub(placed())

    assert attributes["ce-specversion"] == "1.0"
    assert attributes["ce-id"] == "evt-42"
    assert attributes["ce-type"] == ORDER_PLACED
    assert attributes["ce-source"] == "//shop.example/services/orders"
    assert attributes["ce-subject"] == "orders/ord-42"
    assert attributes["ce-time"] == "2024-05-01T09:30:12.345678Z"
    assert attributes["ce-traceparent"] == TRACEPARENT
    assert attributes["content-type"] == "application/json"
    assert all(name == name.lower() for name in attributes)
    assert all(isinstance(value, str) for value in attributes.values())
    assert json.loads(data) == ORDER


def test_encode_for_pubsub_leaves_out_absent_optional_attributes():
    _, attributes = encode_for_pubsub(placed(subject=None, traceparent=None))

    assert "ce-subject" not in attributes
    assert "ce-traceparent" not in attributes


def test_encode_then_decode_keeps_id_type_source_time_subject_traceparent_and_data():
    event = placed()

    decoded = decode_pubsub_attributes(CATALOG, *reversed(encode_for_pubsub(event)))

    assert decoded.id == event.id
    assert decoded.type == event.type
    assert decoded.source == event.source
    assert decoded.time == event.time
    assert decoded.subject == event.subject
    assert decoded.traceparent == event.traceparent
    assert decoded.data == event.data
    assert isinstance(decoded.data, OrderPlaced)
    assert decoded.extensions == {}


def test_encode_then_decode_keeps_the_instant_of_a_non_utc_time_in_utc():
    local = datetime(2024, 5, 1, 11, 30, tzinfo=timezone(timedelta(hours=2)))

    data, attributes = encode_for_pubsub(placed(time=local))
    decoded = decode_pubsub_attributes(CATALOG, attributes, data)

    assert attributes["ce-time"] == "2024-05-01T09:30:00Z"
    assert decoded.time == local
    assert decoded.time is not None and decoded.time.utcoffset() == timedelta(0)


def test_encode_then_decode_keeps_extension_attributes():
    event = DomainEvent(
        id="evt-ext",
        type=ORDER_PLACED,
        source="//test",
        data=CATALOG.validate(ORDER_PLACED, ORDER),
        extensions={"partitionkey": "cus-7", "tenant": "eu"},
    )

    data, attributes = encode_for_pubsub(event)
    decoded = decode_pubsub_attributes(CATALOG, attributes, data)

    assert attributes["ce-partitionkey"] == "cus-7"
    assert decoded.extensions == {"partitionkey": "cus-7", "tenant": "eu"}


def test_decode_pubsub_attributes_accepts_attribute_names_in_any_case():
    data, attributes = encode_for_pubsub(placed())
    shouted = {name.upper(): value for name, value in attributes.items()}

    assert decode_pubsub_attributes(CATALOG, shouted, data).id == "evt-42"


def test_decode_pubsub_attributes_reads_the_structured_binding():
    event = {
        "specversion": "1.0",
        "id": "evt-s",
        "source": "//test",
        "type": ORDER_PLACED,
        "time": "2024-05-01T10:00:00Z",
        "subject": "orders/ord-42",
        "traceparent": TRACEPARENT,
        "datacontenttype": "application/json",
        "data": ORDER,
    }

    decoded = decode_pubsub_attributes(
        CATALOG, {"content-type": f"{STRUCTURED_CONTENT_TYPE}; charset=utf-8"}, json.dumps(event).encode()
    )

    assert (decoded.id, decoded.subject, decoded.traceparent) == ("evt-s", "orders/ord-42", TRACEPARENT)
    assert decoded.time == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert decoded.data_json() == ORDER


def test_decode_pubsub_attributes_refuses_a_message_that_is_not_a_cloudevent():
    with pytest.raises(MalformedDeliveryError, match=r"not a CloudEvent.*ce-specversion.*content-type"):
        decode_pubsub_attributes(CATALOG, {"type": ORDER_PLACED, "content-type": "application/json"}, b"{}")


def test_decode_refuses_a_non_json_data_content_type_naming_it():
    _, attributes = encode_for_pubsub(placed())
    attributes["content-type"] = "application/xml"

    with pytest.raises(InvalidPayloadError, match="'application/xml'"):
        decode_pubsub_attributes(CATALOG, attributes, json.dumps(ORDER).encode())


def test_decode_refuses_an_empty_id():
    data, attributes = encode_for_pubsub(placed())
    attributes["ce-id"] = ""

    with pytest.raises(MalformedDeliveryError, match="'id' is missing or empty"):
        decode_pubsub_attributes(CATALOG, attributes, data)


def test_decode_cloudevent_reads_http_binary_headers():
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "evt-h",
        "ce-source": "//test",
        "ce-type": ORDER_PLACED,
        "content-type": "application/json",
    }

    decoded = decode_cloudevent(CATALOG, headers, json.dumps(ORDER).encode())

    assert decoded.id == "evt-h"
    assert decoded.data_json() == ORDER


def test_decoded_event_without_a_time_attribute_has_no_time():
    # The SDK fills a missing `time` with "now"; the event must not claim a time its producer never gave.
    _, attributes = encode_for_pubsub(placed())
    del attributes["ce-time"]

    decoded = decode_pubsub_attributes(CATALOG, attributes, json.dumps(ORDER).encode())

    assert decoded.time is None


# ---------------------------------------------------------------------------------------------------- new_event


def test_new_event_assigns_a_uuid_id_and_a_utc_time_when_not_given():
    before = datetime.now(UTC)

    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//test")

    assert uuid.UUID(event.id)
    assert event.time is not None and before <= event.time <= datetime.now(UTC)


def test_new_event_keeps_the_given_id_so_a_republish_is_deduplicated():
    first = new_event(CATALOG, ORDER_PLACED, ORDER, source="//test", event_id="evt-same")
    again = new_event(CATALOG, ORDER_PLACED, ORDER, source="//test", event_id="evt-same")

    assert first.id == again.id == "evt-same"


def test_new_event_validates_the_payload():
    with pytest.raises(InvalidPayloadError, match="total"):
        new_event(CATALOG, ORDER_PLACED, order(total=-1), source="//test")


def test_new_event_refuses_a_type_not_in_the_catalog():
    with pytest.raises(UnknownEventTypeError, match=r"shop\.order\.shipped\.v1"):
        new_event(CATALOG, "shop.order.shipped.v1", ORDER, source="//test")


def test_data_json_is_the_payload_as_json_types():
    assert placed().data_json() == ORDER


# ------------------------------------------------------------------------------------------ catalog.validate


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        pytest.param(order(items=[{"sku": "A", "quantity": 0, "unit_price": 1}]), "items[0].quantity", "1", id="qty"),
        pytest.param(
            order(items=[ORDER["items"][0], {"sku": "B", "unit_price": 1}]), "items[1].quantity", "required", id="miss"
        ),
        pytest.param(order(items=[{"sku": "bad sku!", "quantity": 1, "unit_price": 1}]), "items[0].sku", "", id="sku"),
        pytest.param(order(items=[{"sku": "A", "quantity": 1, "unit_price": -5}]), "items[0].unit_price", "", id="px"),
        pytest.param(order(currency="euro"), "currency", "ISO 4217", id="currency"),
        pytest.param(order(total="lots"), "total", "integer", id="total"),
        pytest.param(order(items=[]), "items", "at least 1", id="no-items"),
        pytest.param({k: v for k, v in ORDER.items() if k != "customer_id"}, "customer_id", "is required", id="cust"),
    ],
)
def test_validate_error_names_the_field(payload, field, fragment):
    with pytest.raises(InvalidPayloadError) as error:
        CATALOG.validate(ORDER_PLACED, payload)

    message = str(error.value)
    assert message.startswith(f"{ORDER_PLACED} data: ")
    assert f"{field}:" in message
    assert fragment in message


def test_validate_error_names_every_bad_field():
    payload = order(order_id="", currency="eur", items=[{"sku": "A", "quantity": 1001, "unit_price": 1}])

    with pytest.raises(InvalidPayloadError) as error:
        CATALOG.validate(ORDER_PLACED, payload)

    for field in ("order_id:", "currency:", "items[0].quantity:"):
        assert field in str(error.value)


def test_validate_refuses_data_that_is_not_an_object():
    with pytest.raises(InvalidPayloadError, match=ORDER_PLACED):
        CATALOG.validate(ORDER_PLACED, ["not", "an", "order"])


def test_validate_accepts_json_text_bytes_a_dict_or_the_model():
    model = CATALOG.validate(ORDER_PLACED, ORDER)

    assert CATALOG.validate(ORDER_PLACED, json.dumps(ORDER)) == model
    assert CATALOG.validate(ORDER_PLACED, json.dumps(ORDER).encode()) == model
    assert CATALOG.validate(ORDER_PLACED, model) is model
    assert model.items[0] == OrderLine(sku="MUG-BLUE-350", quantity=2, unit_price=1250)


def test_validate_reads_json_text_that_is_invalid_as_an_invalid_payload():
    with pytest.raises(InvalidPayloadError):
        CATALOG.validate(ORDER_PLACED, "{not json")


def test_validate_ignores_fields_a_newer_producer_added():
    model = CATALOG.validate(ORDER_PLACED, order(gift_wrap=True, items=[{**ORDER["items"][0], "colour": "blue"}]))

    assert "gift_wrap" not in model.model_dump()
    assert "colour" not in model.model_dump()["items"][0]


def test_validate_of_an_unknown_type_names_it_and_lists_the_known_types():
    with pytest.raises(UnknownEventTypeError, match=r"'shop\.order\.placed\.v2' \(known: .*shop\.order\.placed\.v1"):
        CATALOG.validate("shop.order.placed.v2", ORDER)


def test_catalog_refuses_a_second_model_for_a_registered_type_but_allows_the_same_one():
    catalog = build_catalog()

    class Other(BaseModel):
        x: int

    catalog.register(ORDER_PLACED, OrderPlaced)
    with pytest.raises(ValueError, match="already registered"):
        catalog.register(ORDER_PLACED, Other)
    assert catalog.model_for(ORDER_PLACED) is OrderPlaced


def test_empty_catalog_says_no_type_is_known():
    with pytest.raises(UnknownEventTypeError, match=r"known: none"):
        EventCatalog().model_for(ORDER_PLACED)


def test_every_catalog_model_builds_its_validator() -> None:
    # The models defer building their validators to first use (start-up time); build them all here, so a broken
    # model fails the unit tests rather than a service's first delivery of that type.
    for event_type in CATALOG.types:
        model = CATALOG.model_for(event_type)
        assert model.model_rebuild(force=True) is True, event_type
        assert model.__pydantic_complete__, event_type


@pytest.mark.parametrize("attribute", ["ce-id", "ce-source", "ce-type"])
def test_a_binary_event_without_a_required_attribute_is_refused_naming_it(attribute: str) -> None:
    data, attributes = encode_for_pubsub(placed())
    del attributes[attribute]

    # Not the SDK's "Failed to find specversion", which it says for any of them.
    with pytest.raises(MalformedDeliveryError, match=f"required attribute\\(s\\) '{attribute}' missing"):
        decode_pubsub_attributes(CATALOG, attributes, data)
    with pytest.raises(MalformedDeliveryError, match=f"'{attribute}' missing"):
        decode_cloudevent(CATALOG, {k.upper(): v for k, v in attributes.items()}, data)
