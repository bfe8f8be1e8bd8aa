"""The dead-letter recorder's reading of a push body: source subscription, delivery count, original attributes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deadletters.dead_letter import read_dead_letter
from eventkit.errors import PermanentError
from eventkit.failures import stored_payload

ORIGINAL = {"ce-id": "evt-1", "ce-type": "shop.order.placed.v1", "ce-specversion": "1.0", "ce-source": "//s"}
SOURCE = {
    "CloudPubSubDeadLetterSourceSubscription": "inventory-order-events",
    "CloudPubSubDeadLetterSourceSubscriptionProject": "shop-prod",
    "CloudPubSubDeadLetterSourceDeliveryCount": "5",
    "CloudPubSubDeadLetterSourceTopicPublishTime": "2026-01-02T03:04:05.678Z",
}


def _push(attributes: dict[str, str], data: bytes = b'{"order_id": "o-1"}', message_id: str = "dl-1") -> bytes:
    message = {"messageId": message_id, "attributes": attributes, "data": base64.b64encode(data).decode()}
    return json.dumps({"message": message, "subscription": "projects/shop-prod/subscriptions/deadletters-x"}).encode()


def test_dead_letter_names_its_source_subscription_count_and_publish_time() -> None:
    letter = read_dead_letter(_push({**ORIGINAL, **SOURCE}), "fallback")

    assert letter.source_subscription == "projects/shop-prod/subscriptions/inventory-order-events"
    assert letter.delivery_count == 5
    assert letter.source_publish_time == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert letter.event_id == "evt-1"


def test_dead_letter_keeps_the_original_attributes_apart_from_pubsubs_own() -> None:
    letter = read_dead_letter(_push({**ORIGINAL, **SOURCE}), "fallback")
    document = letter.to_document(datetime.now(UTC), topic="projects/shop-prod/topics/order-events")

    assert document["attributes"] == ORIGINAL
    assert set(document["source_attributes"]) == set(SOURCE)
    assert (document["kind"], document["status"], document["delivery_attempt"]) == ("dead_letter", "new", 5)
    assert stored_payload(document) == b'{"order_id": "o-1"}'
    assert document["replayable"] is True


def test_short_subscription_name_without_project_uses_the_recorders_project() -> None:
    attributes = {**ORIGINAL, "CloudPubSubDeadLetterSourceSubscription": "payments-order-events"}
    letter = read_dead_letter(_push(attributes), "shop-local")
    assert letter.source_subscription == "projects/shop-local/subscriptions/payments-order-events"
    assert letter.delivery_count is None


def test_redelivery_and_a_second_dead_lettering_of_the_same_event_share_one_record_id() -> None:
    first = read_dead_letter(_push({**ORIGINAL, **SOURCE}, message_id="dl-1"), "p")
    again = read_dead_letter(_push({**ORIGINAL, **SOURCE}, message_id="dl-2"), "p")
    elsewhere = read_dead_letter(
        _push({**ORIGINAL, **SOURCE, "CloudPubSubDeadLetterSourceSubscription": "payments-order-events"}), "p"
    )
    assert first.record_id == again.record_id
    assert first.record_id != elsewhere.record_id


def test_binary_data_is_kept_exactly() -> None:
    letter = read_dead_letter(_push(SOURCE, data=b"\xff\x00\xfe"), "p")
    assert stored_payload(letter.to_document(datetime.now(UTC), None)) == b"\xff\x00\xfe"


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"message": 1}', b'{"message": {"data": "AA=="}}'])
def test_a_body_that_is_not_a_push_delivery_fails_permanently(body: bytes) -> None:
    with pytest.raises(PermanentError):
        read_dead_letter(body, "p")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(
    max_examples=300, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    body=st.binary(max_size=200)
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.builds(
        lambda attrs, data, mid: _push(attrs, data, mid),
        st.dictionaries(st.sampled_from([*SOURCE, *ORIGINAL]) | st.text(max_size=8), st.text(max_size=30), max_size=6),
        st.binary(max_size=64),
        st.text(min_size=1, max_size=10),
    )
)
def test_any_body_is_read_or_refused_permanently_never_crashes(body: bytes) -> None:
    try:
        letter = read_dead_letter(body, "p")
    except PermanentError as error:
        assert str(error)
        return
    document = letter.to_document(datetime.now(UTC), None)
    assert all(key and isinstance(value, str) for key, value in document["attributes"].items())
    assert document["delivery_attempt"] is None or document["delivery_attempt"] > 0
