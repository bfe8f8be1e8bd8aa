"""The Firestore emulator restarted while events flow: no duplicate effect, nothing lost once it is back.

The emulator keeps its data in memory and ignores ``--export-on-exit`` when stopped by a signal, so
``Stack.stop_firestore`` exports the data through the emulator's REST endpoint first and ``start_firestore``
imports it (``--import-data``): the restart keeps what was committed, as a managed database would. To make
"committed" exact, the consumer reaches Firestore through a TCP proxy that is cut before the export and resumed
after the restart: from the consumer's side Firestore vanishes mid-call (connections reset, commits in flight
with unknown outcome) and comes back with the data it had. Pub/Sub keeps pushing the whole time.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from google.cloud import firestore, pubsub_v1
from reliability_support import (
    TcpProxy,
    create_push_subscription,
    create_topic,
    delete_subscription,
    served,
    unique,
    wait_for,
)

from eventkit import Consumer, DomainEvent, HandlerContext
from eventkit.catalog import CATALOG, ORDER_PLACED
from eventkit.events import encode_for_pubsub, new_event

EVENTS = 120
PUBLISH_SECONDS = 6.0
ORDER = {
    "order_id": "o-restart",
    "customer_id": "c-1",
    "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 100}],
    "total": 100,
    "currency": "EUR",
}


class ProxiedConsumer(Consumer):
    """A consumer whose Firestore client goes through the proxy (every other client in this process does not)."""

    def __init__(self, name: str, project: str, client: Any) -> None:
        super().__init__(name, environ={"GOOGLE_CLOUD_PROJECT": project})
        self._client = client

    @property
    def db(self) -> Any:
        return self._client


def _client_through(address: str, project: str) -> Any:
    previous = os.environ["FIRESTORE_EMULATOR_HOST"]
    os.environ["FIRESTORE_EMULATOR_HOST"] = address
    try:
        client = firestore.Client(project=project)
        client.collection("warm-up").document("proxy").get()  # the channel is built now, to the proxy
    finally:
        os.environ["FIRESTORE_EMULATOR_HOST"] = previous
    return client


def test_firestore_restart_while_events_flow_loses_nothing_and_duplicates_nothing(
    stack_runner: Any, clean_stack: dict[str, Any], db: Any
) -> None:
    project = clean_stack["project"]
    proxy = TcpProxy(clean_stack["emulators"]["firestore"])
    consumer = ProxiedConsumer(unique("fs-restart"), project, _client_through(proxy.address, project))

    @consumer.on(ORDER_PLACED)
    def place(event: DomainEvent, ctx: HandlerContext) -> None:
        ref = ctx.db.collection("effects").document(event.id)
        ctx.transaction.set(ref, {"count": firestore.Increment(1)}, merge=True)

    name = unique("fs-restart")
    topic = create_topic(project, name)
    events = [new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests/reliability") for _ in range(EVENTS)]
    publisher = pubsub_v1.PublisherClient()
    message_ids: list[str] = []

    def publish_steadily() -> None:
        for event in events:
            data, attributes = encode_for_pubsub(event)
            message_ids.append(publisher.publish(topic, data, **attributes).result(timeout=30))
            time.sleep(PUBLISH_SECONDS / EVENTS)

    effects = db.collection("effects")
    with served(consumer) as server:
        subscription = create_push_subscription(project, topic, name, server.url, backoff=(1, 3))
        flow = threading.Thread(target=publish_steadily, daemon=True)
        try:
            flow.start()
            wait_for(lambda: effects.count().get()[0][0].value >= 10, 30, "events flowing before the restart")

            proxy.cut()
            pushes_at_cut = server.pushes
            in_flight_at_cut = pushes_at_cut - sum(server.statuses.values())
            # The outage must reach the consumer: a delivery in flight at the cut, or one arriving after it (the
            # emulator may hold new pushes back while one hangs on the cut connection, so either will do).
            wait_for(lambda: in_flight_at_cut > 0 or server.pushes > pushes_at_cut, 15, "a delivery meeting the outage")
            export = stack_runner.stop_firestore()
            processed_before = server.statuses[200]
            stack_runner.start_firestore(import_data=export)
            pushes_during_outage = server.pushes - pushes_at_cut
            proxy.resume()

            flow.join(timeout=60)
            assert not flow.is_alive(), "publishing did not finish"
            wait_for(lambda: effects.count().get()[0][0].value == EVENTS, 120, f"all {EVENTS} effects")
            # Every message acknowledged: no redelivery is still to come that could count an effect twice.
            wait_for(lambda: server.acknowledged >= set(message_ids), 120, f"all {EVENTS} messages acknowledged")
            counts = [snapshot.get("count") for snapshot in effects.stream()]
        finally:
            delete_subscription(subscription)
            proxy.close()

    assert len(counts) == EVENTS  # nothing lost
    assert set(counts) == {1}  # nothing twice
    assert 0 < processed_before < EVENTS  # the restart happened while events flowed ...
    assert in_flight_at_cut + pushes_during_outage > 0  # ... and deliveries met the consumer's outage
