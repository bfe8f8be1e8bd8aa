"""A consumer process SIGKILLed in the middle of its handler: Pub/Sub redelivers, the effect happens once.

Two moments: before the handler's transaction (nothing written yet: the redelivery does the work) and after its
commit but before the HTTP answer (the work is done but unacknowledged: the redelivery must find the ledger entry
and change nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1
from google.cloud.firestore_v1.base_query import FieldFilter
from reliability_support import (
    ConsumerProcess,
    create_push_subscription,
    create_topic,
    delete_subscription,
    free_port,
    unique,
    wait_for,
    wait_until_wipeable,
)
from waiting import acknowledged

from eventkit.catalog import CATALOG, ORDER_PLACED
from eventkit.events import encode_for_pubsub, new_event

ORDER = {
    "order_id": "o-killed",
    "customer_id": "c-1",
    "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 100}],
    "total": 100,
    "currency": "EUR",
}


@pytest.mark.parametrize("moment", ["before", "after"], ids=["before-the-commit", "after-the-commit"])
def test_consumer_killed_mid_handler_gets_the_redelivery_and_the_effect_happens_once(
    moment: str, clean_stack: dict[str, Any], db: Any, tmp_path: Path
) -> None:
    project = clean_stack["project"]
    name = unique(f"killed-{moment}")
    worker = ConsumerProcess(clean_stack, name, free_port(), tmp_path / "consumer.log")
    topic = create_topic(project, name)
    subscription = create_push_subscription(project, topic, name, worker.url, backoff=(1, 2))
    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests/reliability")
    data, attributes = encode_for_pubsub(event)
    attempts = db.collection("attempts").where(filter=FieldFilter("event_id", "==", event.id))
    effect = db.collection("effects").document(event.id)
    try:
        worker.start(hang=moment)
        message_id = pubsub_v1.PublisherClient().publish(topic, data, **attributes).result(timeout=30)
        wait_for(lambda: len(list(attempts.stream())) == 1, 30, "the first delivery inside the handler")
        if moment == "after":
            wait_for(lambda: effect.get().exists, 30, "the first delivery's commit")
        else:
            assert not effect.get().exists

        worker.kill()
        worker.start(hang="never")

        wait_for(lambda: len(list(attempts.stream())) >= 2, 60, "the redelivery to the restarted consumer")
        wait_for(lambda: effect.get().exists, 30, "the effect")
        # The successor answered the redelivery (the killed process never answered): its effect, if any, is in.
        wait_for(lambda: acknowledged(worker.log.read_text(), [message_id]), 60, "the redelivery acknowledged")
        pids = {snapshot.get("pid") for snapshot in attempts.stream()}
        assert len(pids) == 2  # the killed process and its successor each got the message
        assert effect.get().get("count") == 1
    finally:
        delete_subscription(subscription)
        worker.kill()
        wait_until_wipeable(clean_stack)
