"""End to end on the local stack: OrderPlaced / OrderCancelled published to `order-events` reach inventory and
payments through the Pub/Sub emulator's push subscriptions; their answers leave through the transactional outbox.

Each test uses its own order id and reads only that order's documents, so whatever else reacts to the bus (the
saga) cannot make it pass or fail by accident.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from google.cloud import pubsub_v1
from waiting import wait_for, wait_until_acknowledged

from eventkit.catalog import (
    CATALOG,
    INVENTORY_REJECTED,
    INVENTORY_RELEASED,
    INVENTORY_RESERVED,
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    ORDER_PLACED,
    PAYMENT_AUTHORIZED,
    PAYMENT_DECLINED,
    PAYMENT_REFUNDED,
)
from eventkit.events import DomainEvent, encode_for_pubsub, new_event
from eventkit.idempotency import ledger_document_id

SKU = "SAGA-MUG"
PRICE = 1200
STOCK = 10


def _order_id() -> str:
    return f"o-{uuid.uuid4().hex[:10]}"


def _placed(order_id: str, token: str = "tok_visa", quantity: int = 2) -> DomainEvent:
    data = {
        "order_id": order_id,
        "customer_id": "cust-1",
        "items": [{"sku": SKU, "quantity": quantity, "unit_price": PRICE}],
        "total": PRICE * quantity,
        "currency": "EUR",
        "email": "ana@example.com",
        "payment_token": token,
    }
    return new_event(CATALOG, ORDER_PLACED, data, source="//tests", subject=f"orders/{order_id}")


def _cancelled(order_id: str, quantity: int = 2) -> DomainEvent:
    data = {
        "order_id": order_id,
        "customer_id": "cust-1",
        "email": "ana@example.com",
        "total": PRICE * quantity,
        "currency": "EUR",
        "reason": "payment declined",
    }
    return new_event(CATALOG, ORDER_CANCELLED, data, source="//tests", subject=f"orders/{order_id}")


def _publish(stack: dict[str, Any], event: DomainEvent, times: int = 1) -> list[str]:
    """Publish ``event`` in ``times`` messages; their message ids."""
    data, attributes = encode_for_pubsub(event)
    client = pubsub_v1.PublisherClient()
    futures = [client.publish(stack["topics"]["order-events"], data, **attributes) for _ in range(times)]
    return [future.result(timeout=10) for future in futures]


def _seed(db: Any) -> None:
    db.collection("products").document(SKU).set({"name": "Saga mug", "price": PRICE, "available": STOCK, "reserved": 0})


def _stock(db: Any) -> tuple[int, int]:
    doc = db.collection("products").document(SKU).get().to_dict()
    return doc["available"], doc["reserved"]


def _status(db: Any, collection: str, order_id: str) -> str | None:
    snapshot = db.collection(collection).document(order_id).get()
    return snapshot.get("status") if snapshot.exists else None


def _outbox(db: Any, order_id: str) -> list[dict[str, Any]]:
    """This order's outgoing events (as the outbox holds them), oldest first."""
    entries = [
        entry
        for entry in (doc.to_dict() for doc in db.collection("outbox").stream())
        if entry["attributes"].get("ce-subject") == f"orders/{order_id}"
    ]
    return sorted(entries, key=lambda entry: entry["created_at"])


def _types(entries: list[dict[str, Any]]) -> list[str]:
    return sorted(entry["event_type"] for entry in entries)


def _gateway(db: Any, order_id: str, kind: str) -> list[dict[str, Any]]:
    docs = (doc.to_dict() for doc in db.collection("gateway_charges").stream())
    return [doc for doc in docs if doc["order_id"] == order_id and doc["kind"] == kind]


def _approved_charges(db: Any, order_id: str) -> list[dict[str, Any]]:
    return [charge for charge in _gateway(db, order_id, "charge") if charge["status"] == "approved"]


def _all_sent(db: Any, order_id: str, count: int) -> list[dict[str, Any]]:
    entries = _outbox(db, order_id)
    return entries if len(entries) >= count and all(entry["sent"] for entry in entries) else []


def test_order_placed_reserves_charges_and_publishes_both_answers(clean_stack: dict[str, Any], db: Any) -> None:
    _seed(db)
    order_id = _order_id()

    started = time.monotonic()
    _publish(clean_stack, _placed(order_id))
    entries = wait_for(lambda: _all_sent(db, order_id, 2), what="both answers sent")
    elapsed = time.monotonic() - started

    assert _types(entries) == [INVENTORY_RESERVED, PAYMENT_AUTHORIZED]
    assert _status(db, "reservations", order_id) == "RESERVED"
    assert _status(db, "payments", order_id) == "AUTHORIZED"
    assert _stock(db) == (STOCK - 2, 2)
    (charge,) = _approved_charges(db, order_id)
    authorized = json.loads(next(e for e in entries if e["event_type"] == PAYMENT_AUTHORIZED)["data"])
    assert authorized == {"order_id": order_id, "payment_id": charge["charge_id"], "amount": 2400, "currency": "EUR"}
    reserved = json.loads(next(e for e in entries if e["event_type"] == INVENTORY_RESERVED)["data"])
    assert reserved["items"] == [{"sku": SKU, "quantity": 2}]
    assert all(entry["message_id"] for entry in entries)
    assert elapsed < 10, f"publish → both answers took {elapsed:.1f}s"


def test_order_placed_published_ten_times_reserves_once_and_charges_once(
    clean_stack: dict[str, Any], db: Any, service_log: Callable[[str], str]
) -> None:
    _seed(db)
    order_id = _order_id()
    event = _placed(order_id, quantity=3)

    message_ids = _publish(clean_stack, event, times=10)  # ten messages, one event id
    for consumer in ("inventory", "payments"):  # every push answered: the nine duplicates have done what they do
        wait_until_acknowledged(service_log, consumer, message_ids)
    wait_for(lambda: _all_sent(db, order_id, 2), what="both answers sent")

    assert _stock(db) == (STOCK - 3, 3)
    assert len(_gateway(db, order_id, "charge")) == 1
    assert _gateway(db, order_id, "charge")[0]["attempts"] == 1
    assert _types(_outbox(db, order_id)) == [INVENTORY_RESERVED, PAYMENT_AUTHORIZED]


def test_transient_gateway_failures_are_retried_and_charge_once(clean_stack: dict[str, Any], db: Any) -> None:
    _seed(db)
    order_id = _order_id()

    _publish(clean_stack, _placed(order_id, token="tok_transient"))
    wait_for(lambda: _status(db, "payments", order_id) == "AUTHORIZED", seconds=120, what="authorized after retries")

    (charge,) = _gateway(db, order_id, "charge")
    assert charge["status"] == "approved"
    assert charge["attempts"] == 3  # two transient failures (GATEWAY_TRANSIENT_FAILURES=2), then approved
    wait_for(lambda: PAYMENT_AUTHORIZED in _types(_all_sent(db, order_id, 2)), what="PaymentAuthorized sent")
    assert _types(_outbox(db, order_id)).count(PAYMENT_AUTHORIZED) == 1


def test_declined_token_is_answered_with_payment_declined(clean_stack: dict[str, Any], db: Any) -> None:
    _seed(db)
    order_id = _order_id()

    _publish(clean_stack, _placed(order_id, token="tok_declined"))
    entries = wait_for(lambda: _all_sent(db, order_id, 2), what="both answers sent")

    assert _types(entries) == [INVENTORY_RESERVED, PAYMENT_DECLINED]
    declined = json.loads(next(e for e in entries if e["event_type"] == PAYMENT_DECLINED)["data"])
    assert declined["reason"] == "declined"
    assert _approved_charges(db, order_id) == []
    assert _status(db, "payments", order_id) == "DECLINED"


def test_cancel_after_reserve_releases_stock_once_and_refunds_once(
    clean_stack: dict[str, Any], db: Any, service_log: Callable[[str], str]
) -> None:
    _seed(db)
    order_id = _order_id()
    _publish(clean_stack, _placed(order_id))
    wait_for(lambda: _all_sent(db, order_id, 2), what="reserved and authorized")

    cancelled = _cancelled(order_id)
    message_ids = _publish(clean_stack, cancelled, times=3)  # one event, three messages
    message_ids += _publish(clean_stack, _cancelled(order_id))  # and a second cancellation with its own id
    for consumer in ("inventory", "payments"):  # every push answered, the duplicates' included
        wait_until_acknowledged(service_log, consumer, message_ids)
    wait_for(lambda: _status(db, "reservations", order_id) == "RELEASED", what="stock released")
    wait_for(lambda: _status(db, "payments", order_id) == "REFUNDED", what="payment refunded")
    entries = wait_for(lambda: _all_sent(db, order_id, 4), what="four answers sent")

    assert _stock(db) == (STOCK, 0)
    (refund,) = _gateway(db, order_id, "refund")
    assert refund["amount"] == 2400
    assert _types(entries) == [INVENTORY_RELEASED, INVENTORY_RESERVED, PAYMENT_AUTHORIZED, PAYMENT_REFUNDED]
    assert _types(_outbox(db, order_id)) == _types(entries)


def test_cancel_before_placed_reserves_nothing_and_charges_nothing(clean_stack: dict[str, Any], db: Any) -> None:
    _seed(db)
    order_id = _order_id()

    _publish(clean_stack, _cancelled(order_id))
    wait_for(lambda: _status(db, "reservations", order_id) == "CANCELLED", what="inventory tombstone")
    wait_for(lambda: _status(db, "payments", order_id) == "CANCELLED", what="payments tombstone")
    _publish(clean_stack, _placed(order_id))  # the late OrderPlaced
    entries = wait_for(lambda: _all_sent(db, order_id, 2), what="both answers sent")

    assert _types(entries) == [INVENTORY_REJECTED, PAYMENT_DECLINED]
    assert all(json.loads(entry["data"])["reason"] == "order_cancelled" for entry in entries)
    assert _stock(db) == (STOCK, 0)
    assert _gateway(db, order_id, "charge") == []


def test_out_of_stock_order_is_rejected_naming_the_sku(clean_stack: dict[str, Any], db: Any) -> None:
    _seed(db)
    order_id = _order_id()

    _publish(clean_stack, _placed(order_id, quantity=STOCK + 1))
    entries = wait_for(lambda: _all_sent(db, order_id, 2), what="both answers sent")

    rejected = json.loads(next(e for e in entries if e["event_type"] == INVENTORY_REJECTED)["data"])
    assert rejected["reason"] == "out_of_stock"
    assert rejected["skus"] == [SKU]
    assert f"only {STOCK} available" in rejected["detail"]
    assert _stock(db) == (STOCK, 0)


def test_order_confirmed_published_ten_times_mails_once(
    clean_stack: dict[str, Any], db: Any, service_log: Callable[[str], str]
) -> None:
    order_id = _order_id()
    data = {"order_id": order_id, "customer_id": "c", "email": "ana@example.com", "total": 2400, "currency": "EUR"}
    event = new_event(CATALOG, ORDER_CONFIRMED, data, source="//tests", subject=f"orders/{order_id}")

    message_ids = _publish(clean_stack, event, times=10)
    ledger = db.collection("idempotency").document(ledger_document_id("notifications", f"{event.id}:ana@example.com"))
    wait_for(lambda: ledger.get().exists and ledger.get().get("status") == "COMPLETED", what="mail sent")
    wait_until_acknowledged(service_log, "notifications", message_ids)  # the other nine pushes answered too

    sent = [doc.to_dict() for doc in db.collection("sent_mail").stream() if doc.get("order_id") == order_id]
    assert len(sent) == 1
    assert sent[0]["message_id"].startswith(f"<{event.id}.")
