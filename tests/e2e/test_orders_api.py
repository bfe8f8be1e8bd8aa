"""The orders API on the local stack: placing orders, idempotency, every refusal, and nothing written on one."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from waiting import wait_for

ORDER = {
    "customer_id": "cust-1",
    "email": "ana@example.com",
    "items": [{"sku": "MUG-1", "quantity": 2}],
    "payment_token": "tok_ok",
    "currency": "EUR",
}
OPENAPI = Path(__file__).resolve().parents[2] / "services" / "orders" / "orders" / "openapi.yaml"


@pytest.fixture
def api(clean_stack: dict[str, Any], db: Any) -> str:
    db.collection("products").document("MUG-1").set(
        {"name": "Mug", "price": 1200, "currency": "EUR", "available": 10, "reserved": 0}
    )
    return clean_stack["services"]["orders"]


def _count(db: Any, collection: str) -> int:
    return len(list(db.collection(collection).stream()))


def _placed_events(db: Any) -> list[dict[str, Any]]:
    # Other services add their own outbox entries as they react; only OrderPlaced is the API's.
    entries = (doc.to_dict() for doc in db.collection("outbox").stream())
    return [entry for entry in entries if entry["event_type"] == "shop.order.placed.v1"]


def test_order_is_priced_from_the_catalog_and_written_with_its_event(api: str, db: Any) -> None:
    response = requests.post(f"{api}/orders", json=ORDER, timeout=30)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["total"] == 2400  # 2 x 1200 from the catalog
    assert response.headers["Location"] == f"/orders/{body['order_id']}"
    order = requests.get(f"{api}/orders/{body['order_id']}", timeout=10).json()
    assert order["items"] == [{"sku": "MUG-1", "quantity": 2, "unit_price": 1200}]
    assert order["timeline"][0]["type"] == "shop.order.placed.v1"
    # published right after the commit; marked sent in a batch a few milliseconds later (eventkit/sent_marks.py)
    [placed] = wait_for(lambda: [e for e in _placed_events(db) if e["sent"]], 5, "the OrderPlaced entry marked sent")
    assert placed["message_id"]


def test_an_order_names_the_trace_of_its_flow_the_callers_or_one_started_for_it(api: str, db: Any) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traced = requests.post(
        f"{api}/orders", json=ORDER, headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}, timeout=30
    )
    untraced = requests.post(f"{api}/orders", json=ORDER, timeout=30)

    assert traced.json()["trace_id"] == trace_id, traced.text
    started = untraced.json()["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", started) and started != trace_id
    for answer in (traced, untraced):
        shown = requests.get(f"{api}/orders/{answer.json()['order_id']}", timeout=10).json()
        assert shown["trace_id"] == answer.json()["trace_id"]
    assert sorted(e["attributes"]["ce-traceparent"].split("-")[1] for e in _placed_events(db)) == sorted(
        [trace_id, started]
    )


def test_same_idempotency_key_and_body_returns_the_same_order_without_a_second_event(api: str, db: Any) -> None:
    headers = {"Idempotency-Key": "key-123"}

    first = requests.post(f"{api}/orders", json=ORDER, headers=headers, timeout=30)
    second = requests.post(f"{api}/orders", json=ORDER, headers=headers, timeout=30)

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["order_id"] == second.json()["order_id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert _count(db, "orders") == 1
    assert len(_placed_events(db)) == 1


def test_same_idempotency_key_with_another_body_is_a_conflict(api: str, db: Any) -> None:
    headers = {"Idempotency-Key": "key-456"}
    requests.post(f"{api}/orders", json=ORDER, headers=headers, timeout=30)

    other = {**ORDER, "items": [{"sku": "MUG-1", "quantity": 3}]}
    response = requests.post(f"{api}/orders", json=other, headers=headers, timeout=30)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert _count(db, "orders") == 1


def test_concurrent_requests_with_one_idempotency_key_place_one_order(api: str, db: Any) -> None:
    """They race to create the key's record in one atomic commit; the losers answer with the winner's order."""
    headers = {"Idempotency-Key": "key-race"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: requests.post(f"{api}/orders", json=ORDER, headers=headers, timeout=30), range(8))
        )

    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    assert len({a.json()["order_id"] for a in answers}) == 1
    assert _count(db, "orders") == 1
    assert len(_placed_events(db)) == 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({**ORDER, "items": [{"sku": "NOPE-1", "quantity": 1}]}, "items[0].sku", "unknown SKU"),
        ({**ORDER, "items": [{"sku": "MUG-1", "quantity": 0}]}, "items[0].quantity", "greater than or equal to 1"),
        ({**ORDER, "items": [{"sku": "MUG-1", "quantity": 100000}]}, "items[0].quantity", "less than or equal"),
        ({**ORDER, "items": [{"sku": "MUG-1", "quantity": "2"}]}, "items[0].quantity", "valid integer"),
        ({k: v for k, v in ORDER.items() if k != "email"}, "email", "is required"),
        ({**ORDER, "email": "not-an-email"}, "email", "email address"),
        ({**ORDER, "currency": "euro"}, "currency", "ISO 4217"),
        ({**ORDER, "currency": "USD"}, "currency", "sold in EUR"),
        ({**ORDER, "items": []}, "items", "at least 1"),
        ({**ORDER, "coupon": "FREE"}, "coupon", "not a known field"),
    ],
)
def test_invalid_order_is_422_naming_the_field_and_writes_nothing(
    api: str, db: Any, body: dict[str, Any], field: str, message: str
) -> None:
    response = requests.post(f"{api}/orders", json=body, timeout=30)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert any(d["field"] == field and message in d["message"] for d in error["details"]), error["details"]
    assert _count(db, "orders") == 0
    assert _placed_events(db) == []


@pytest.mark.parametrize(
    ("data", "headers", "status", "code"),
    [
        (b'{"customer_id": ', {"Content-Type": "application/json"}, 400, "malformed_json"),
        (b"customer_id=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 422, "validation_failed"),
        (b"x" * (1024 * 1024 + 1), {"Content-Type": "application/json"}, 413, "payload_too_large"),
    ],
)
def test_malformed_requests_get_the_documented_status_and_write_nothing(
    api: str, db: Any, data: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    response = requests.post(f"{api}/orders", data=data, headers=headers, timeout=30)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert _count(db, "orders") == 0


def test_unknown_order_is_404_and_wrong_method_is_405(api: str) -> None:
    missing = requests.get(f"{api}/orders/does-not-exist", timeout=10)
    wrong_method = requests.delete(f"{api}/orders", timeout=10)
    unknown_path = requests.get(f"{api}/nothing-here", timeout=10)

    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")
    assert unknown_path.status_code == 404


def test_products_list_the_catalog_and_health_answers(api: str) -> None:
    products = requests.get(f"{api}/products", timeout=10).json()["products"]

    assert products == [{"sku": "MUG-1", "name": "Mug", "price": 1200, "currency": "EUR", "available": 10}]
    assert requests.get(f"{api}/healthz", timeout=10).json() == {"status": "ok"}


def test_served_openapi_document_is_the_repository_copy_and_lists_every_route(api: str) -> None:
    served = requests.get(f"{api}/openapi.yaml", timeout=10)
    document = yaml.safe_load(served.text)

    assert served.text == OPENAPI.read_text()
    assert set(document["paths"]) == {"/orders", "/orders/{order_id}", "/products", "/healthz", "/openapi.yaml"}
    post = document["paths"]["/orders"]["post"]["responses"]
    assert {"201", "400", "409", "413", "415", "422"} <= set(post)
