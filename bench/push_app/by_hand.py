"""Rows (e) and (f) of the push-path benchmark: the bare function doing (d)'s Firestore and Pub/Sub work by hand.

What the transaction and the publish cost on their own, served the same way: the same round trips as the
runtime's ``full`` target (one BatchGetDocuments that begins the transaction and reads the ledger entry, one
Commit with the effect, the ledger entry and the outbox entry, one Publish waited on) through the same client
libraries, with none of the runtime: no envelope or catalog validation, no log line, no JSON answer, no "sent"
mark. (e) minus (a) is the transaction's and publish's own per-event cost; (d) minus (e) is what the runtime adds.

(e) publishes as a hand-written function would by default, through the library's batches, and holds a server
thread while its message waits up to 10 ms for company; (f) sends each message at once in its own Publish call
(eventkit sends a message at once too, unless a call to its topic is under way: then it joins the next). Which
of the two is "the cost of the calls" changes the accounting a lot (docs/performance.md).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from eventkit.clients import firestore_client, publisher_client  # the process's clients, built on first use
from eventkit.publish import publish_call  # one Publish RPC from the calling thread, eventkit's own call
from eventkit.transactions import run_read_write  # the same two Firestore round trips as the runtime's ledger

TOPIC = "bench-events"


def by_hand(request: Any) -> tuple[str, int]:
    """Row (e): the publish through the client library's default batches (up to 10 ms for company)."""
    return _by_hand(request, _through_batches)


def by_hand_at_once(request: Any) -> tuple[str, int]:
    """Row (f): the publish as one Publish call at once (the call eventkit makes, here for every message)."""
    return _by_hand(request, _at_once)


def _through_batches(topic: str, data: bytes, attributes: dict[str, str]) -> None:
    publisher_client().publish(topic, data, **attributes).result(timeout=30)


def _at_once(topic: str, data: bytes, attributes: dict[str, str]) -> None:
    from google.pubsub_v1 import PubsubMessage

    publish_call(topic, [PubsubMessage(data=data, attributes=attributes)], 30.0)


def _by_hand(request: Any, publish: Callable[[str, bytes, dict[str, str]], None]) -> tuple[str, int]:
    message = json.loads(request.get_data())["message"]
    attributes = message["attributes"]
    event_id = attributes["ce-id"]
    order = json.loads(base64.b64decode(message["data"]))
    db = firestore_client(os.environ["GOOGLE_CLOUD_PROJECT"])
    ledger = db.collection("idempotency").document(f"bench-by-hand:{event_id}")
    topic = f"projects/{os.environ['GOOGLE_CLOUD_PROJECT']}/topics/{TOPIC}"
    out_id = f"{event_id}-out"
    out_data = json.dumps({"order_id": order["order_id"], "total": order["total"], "currency": "EUR"})
    out_attributes = {**attributes, "ce-id": out_id, "ce-type": "shop.order.confirmed.v1"}

    def write(transaction: Any, snapshots: list[Any]) -> bool:
        if snapshots[0].exists:
            return False
        now = datetime.now(UTC)
        transaction.set(db.collection("bench-effects").document(event_id), {"order_id": order["order_id"]})
        transaction.set(
            ledger,
            {"key": event_id, "status": "COMPLETED", "expires_at": now + timedelta(days=7), "completed_at": now},
        )
        outbox_entry = {"topic": topic, "data": out_data, "attributes": out_attributes, "sent": False}
        # Not the runtime's "outbox" collection: the stack's sweeper would publish these entries, never marked sent.
        transaction.set(db.collection("bench-by-hand-outbox").document(out_id), outbox_entry | {"created_at": now})
        return True

    if run_read_write(db, [ledger], write, event_id):
        publish(topic, out_data.encode(), out_attributes)
    return "", 204
