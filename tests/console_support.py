"""Failure records as the recorder writes them (counted as waiting, as it counts them), put straight into Firestore
for the console's tests, and a topic
with a pull subscription that counts what a replay publishes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from eventkit.failures import FAILURES_COLLECTION, KIND_DEAD_LETTER, STATUS_NEW, payload_fields
from eventkit.waiting_counts import count_write

SCRIPT_PAYLOAD = b'<script>window.__pwned = "payload"</script>'
SCRIPT_ATTRIBUTE = "<img src=x onerror=\"window.__pwned = 'attribute'\">"


def put_record(
    db: Any,
    *,
    payload: bytes = b'{"order_id": "o-1"}',
    topic: str | None = None,
    subscription: str | None = None,
    attributes: dict[str, str] | None = None,
    status: str = STATUS_NEW,
    last_seen: datetime | None = None,
    record_id: str | None = None,
    event_type: str = "shop.test.v1",
) -> str:
    record_id = record_id or f"rec-{uuid.uuid4().hex[:16]}"
    now = last_seen or datetime.now(UTC)
    record = {
        "kind": KIND_DEAD_LETTER,
        "status": status,
        "consumer": None,
        "reason": "max_delivery_attempts",
        "error": "Pub/Sub gave up after 5 deliveries",
        "transport": "pubsub_push",
        "subscription": subscription,
        "topic": topic,
        "message_id": f"m-{record_id}",
        "attributes": attributes if attributes is not None else {"ce-id": record_id, "ce-type": event_type},
        "ordering_key": None,
        "event_id": record_id,
        "event_type": event_type,
        "delivery_attempt": 5,
        **payload_fields(payload),
        "replayable": True,
        "count": 1,
        "first_seen": now,
        "last_seen": now,
    }
    batch = db.batch()
    batch.set(db.collection(FAILURES_COLLECTION).document(record_id), record)
    count_write(batch, db, None, record)
    batch.commit()
    return record_id


def replay_target(project: str) -> tuple[str, str]:
    """(topic path, pull subscription path): a topic of the test's own, where a replay's messages can be counted."""
    from google.cloud import pubsub_v1

    name = f"console-replay-{uuid.uuid4().hex[:8]}"
    topic = pubsub_v1.PublisherClient().create_topic(request={"name": f"projects/{project}/topics/{name}"}).name
    subscription = pubsub_v1.SubscriberClient().create_subscription(
        request={"name": f"projects/{project}/subscriptions/{name}", "topic": topic}
    )
    return topic, subscription.name


def pull_all(subscription: str) -> list[Any]:
    """Every message waiting on ``subscription`` now, acknowledged."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    received = []
    while True:
        answer = subscriber.pull(request={"subscription": subscription, "max_messages": 50}, timeout=10)
        if not answer.received_messages:
            return received
        received += [m.message for m in answer.received_messages]
        subscriber.acknowledge(
            request={"subscription": subscription, "ack_ids": [m.ack_id for m in answer.received_messages]}
        )


def readings_dead_letter(db: Any, project: str, device: str) -> str:
    """A dead letter of telemetry-analytics: a real readings event (one reading of ``device``) that never reached
    analytics; the console replays it to the topic of its subscription, ``telemetry``."""
    from eventkit.catalog import CATALOG
    from eventkit.catalog.telemetry import TELEMETRY_READINGS
    from eventkit.events import new_event

    reading = {"reading_id": "r1", "ts": datetime.now(UTC).isoformat(), "metrics": {"temperature": 21.5}}
    event = new_event(
        CATALOG, TELEMETRY_READINGS, {"device_id": device, "readings": [reading]}, source="//test/devices"
    )
    return _event_dead_letter(db, event, f"projects/{project}/subscriptions/telemetry-analytics-telemetry")


def order_dead_letter(
    db: Any, project: str, order_id: str, *, status: str = STATUS_NEW, last_seen: datetime | None = None
) -> str:
    """A dead letter of the notifications service: a real OrderConfirmed of ``order_id``, its attributes as eventkit
    publishes them (the subject ``orders/<order_id>`` among them), that the mail never went out for."""
    from eventkit.catalog import CATALOG
    from eventkit.catalog.orders import ORDER_CONFIRMED
    from eventkit.events import new_event

    confirmed = {"order_id": order_id, "customer_id": "cust-7", "total": 2400, "currency": "EUR"}
    event = new_event(CATALOG, ORDER_CONFIRMED, confirmed, source="//test/orders", subject=f"orders/{order_id}")
    return _event_dead_letter(
        db, event, f"projects/{project}/subscriptions/notifications-order-events", event_type=ORDER_CONFIRMED,
        status=status, last_seen=last_seen,
    )  # fmt: skip


def _event_dead_letter(db: Any, event: Any, subscription: str, **fields: Any) -> str:
    """``event`` as a dead letter of ``subscription``: its data and attributes as eventkit publishes them."""
    from eventkit.events import encode_for_pubsub

    data, attributes = encode_for_pubsub(event)
    return put_record(
        db, payload=data, attributes=attributes, subscription=subscription, record_id=f"rec-{event.id}", **fields
    )
