"""Placing an order on the Firestore emulator: two round trips, no transaction, and the Idempotency-Key kept."""

from __future__ import annotations

from typing import Any

import pytest
from firestore_calls import counts, record_firestore_calls

from eventkit import Service
from orders.order_request import OrderRequest
from orders.order_store import IdempotencyKeyReused, place_order

BODY = {
    "customer_id": "c-1",
    "email": "ana@example.com",
    "items": [{"sku": "MUG-1", "quantity": 2}, {"sku": "CUP-1", "quantity": 1}],
    "payment_token": "tok_ok",
    "currency": "EUR",
}


@pytest.fixture
def orders(clean_stack: dict[str, Any], db: Any) -> Service:
    for sku, price in (("MUG-1", 1200), ("CUP-1", 800)):
        db.collection("products").document(sku).set({"name": sku, "price": price, "currency": "EUR", "available": 5})
    environ = {"GOOGLE_CLOUD_PROJECT": clean_stack["project"], "TOPIC_ORDER_EVENTS": "order-events"}
    return Service("orders-store-test", topics=["order-events"], environ=environ)


def test_an_order_is_one_read_and_one_commit_with_its_event(
    orders: Service, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = record_firestore_calls(orders.db, monkeypatch)
    placed = place_order(orders, OrderRequest.model_validate(BODY), "key-1")

    assert counts(calls) == {"batch_get_documents": 1, "commit": 1}  # the key record and products; then the rest
    assert placed.order["total"] == 2 * 1200 + 800 and not placed.replayed
    assert db.collection("orders").document(placed.order["order_id"]).get().exists
    entry = db.collection("outbox").document(placed.staged.event_id).get()  # type: ignore[union-attr]
    assert entry.get("event_type") == "shop.order.placed.v1" and entry.get("sent") is False  # publish is the API's


def test_the_same_key_replays_and_another_body_under_it_is_refused(orders: Service, db: Any) -> None:
    request = OrderRequest.model_validate(BODY)
    first = place_order(orders, request, "key-2")
    again = place_order(orders, request, "key-2")

    assert again.replayed and again.staged is None and again.order["order_id"] == first.order["order_id"]
    other = OrderRequest.model_validate({**BODY, "items": [{"sku": "MUG-1", "quantity": 1}]})
    with pytest.raises(IdempotencyKeyReused):
        place_order(orders, other, "key-2")
    assert len(list(db.collection("orders").stream())) == 1


def test_a_request_that_loses_the_race_for_its_key_answers_with_the_winners_order(
    orders: Service, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both read the key as unused; the second commit finds it taken, writes nothing, and replays the first."""
    request = OrderRequest.model_validate(BODY)
    client = orders.db  # the service's own client: the calls to intercept are its
    real_get_all, rival = client.get_all, []

    def get_all_then_lose_the_race(refs: Any, *args: Any, **kwargs: Any) -> Any:
        snapshots = list(real_get_all(refs, *args, **kwargs))
        monkeypatch.setattr(client, "get_all", real_get_all)  # the rival reads as usual
        rival.append(place_order(orders, request, "key-3"))  # and commits first
        return snapshots

    monkeypatch.setattr(client, "get_all", get_all_then_lose_the_race)
    loser = place_order(orders, request, "key-3")

    assert not rival[0].replayed
    assert loser.replayed and loser.order["order_id"] == rival[0].order["order_id"]
    assert len(list(db.collection("orders").stream())) == 1
    placed = [e for e in db.collection("outbox").stream() if e.get("event_type") == "shop.order.placed.v1"]
    assert len(placed) == 1


def test_a_commit_firestore_cannot_take_now_is_503_try_again_and_writes_nothing(
    orders: Service, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flask
    from google.api_core.exceptions import ServiceUnavailable
    from google.cloud.firestore_v1.batch import WriteBatch

    from orders.api_routes import OrdersApi

    def unavailable(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise ServiceUnavailable("the emulator is busy")

    monkeypatch.setattr(WriteBatch, "commit", unavailable)
    with flask.Flask("orders").test_request_context("/orders", method="POST", json=BODY):
        body, status, _ = OrdersApi(orders).handle(flask.request)

    assert status == 503 and '"try_again"' in body
    assert list(db.collection("orders").stream()) == []
