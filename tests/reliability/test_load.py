"""A bounded load run through push: N events at concurrency C, every one processed exactly once.

Counted from Firestore (one ``effects/<event id>`` document per event, its ``count`` incremented in the ledger
transaction). The throughput is printed as a figure and never asserted: it depends on the machine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1
from reliability_support import (
    ConsumerProcess,
    create_push_subscription,
    create_topic,
    delete_subscription,
    free_port,
    unique,
    wait_for,
)
from waiting import acknowledged

from eventkit.catalog import CATALOG, ORDER_PLACED
from eventkit.events import encode_for_pubsub, new_event

EVENTS = 2000
CONCURRENCY = 16
DEADLINE_SECONDS = 150
ORDER = {
    "order_id": "o-load",
    "customer_id": "c-1",
    "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 100}],
    "total": 100,
    "currency": "EUR",
}


def test_load_run_processes_every_event_exactly_once(
    clean_stack: dict[str, Any], db: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = clean_stack["project"]
    name = unique("load")
    worker = ConsumerProcess(clean_stack, name, free_port(), tmp_path / "consumer.log")
    topic = create_topic(project, name)
    subscription = create_push_subscription(project, topic, name, worker.url, backoff=(1, 5), ack_deadline=60)
    messages = [
        encode_for_pubsub(new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests/load")) for _ in range(EVENTS)
    ]
    effects = db.collection("effects")
    try:
        worker.start(concurrency=CONCURRENCY)
        publisher = pubsub_v1.PublisherClient()
        began = time.monotonic()
        futures = [publisher.publish(topic, data, **attributes) for data, attributes in messages]
        message_ids = {future.result(timeout=60) for future in futures}
        published_in = time.monotonic() - began
        wait_for(lambda: effects.count().get()[0][0].value == EVENTS, DEADLINE_SECONDS, f"{EVENTS} effects", poll=1)
        elapsed = time.monotonic() - began
        # Every message acknowledged: no redelivery is still to come that could count an effect twice.
        wait_for(
            lambda: acknowledged(worker.log.read_text(), message_ids) == message_ids,
            DEADLINE_SECONDS,
            f"all {EVENTS} messages acknowledged",
            poll=1,
        )
        counts = [snapshot.get("count") for snapshot in effects.stream()]
    finally:
        delete_subscription(subscription)
        worker.kill()

    assert len(counts) == EVENTS
    assert set(counts) == {1}
    with capsys.disabled():
        print(
            f"\nload: {EVENTS} events through push at concurrency {CONCURRENCY}: processed exactly once in "
            f"{elapsed:.1f} s = {EVENTS / elapsed:.0f} events/s (published in {published_in:.1f} s)"
        )
