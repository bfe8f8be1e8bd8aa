"""A hot product's stock in shards, end to end on the local stack (orders API → saga → inventory → payments):
no oversell, an order spanning shards, a cancellation giving each shard back what it took, the API's total."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from waiting import wait_for

FINAL = ("CONFIRMED", "CANCELLED")
SKU = "HOT-1"
SHARDS = [3, 0, 5, 2]  # 10 in all, one shard already dry


@pytest.fixture
def hot(clean_stack: dict[str, Any], db: Any) -> dict[str, Any]:
    product = db.collection("products").document(SKU)
    product.set({"name": "Hot item", "price": 1000, "currency": "EUR", "available": 0, "reserved": 0,
                 "stock_shards": len(SHARDS)})  # fmt: skip
    for index, available in enumerate(SHARDS):
        product.collection("stock_shards").document(str(index)).set({"available": available, "reserved": 0})
    return clean_stack


def _place(stack: dict[str, Any], quantity: int = 1, token: str = "tok_ok") -> str:
    body = {
        "customer_id": "cust-1",
        "email": "ana@example.com",
        "items": [{"sku": SKU, "quantity": quantity}],
        "payment_token": token,
        "currency": "EUR",
    }
    response = requests.post(f"{stack['services']['orders']}/orders", json=body, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()["order_id"]


def _final(stack: dict[str, Any], order_id: str) -> dict[str, Any]:
    url = f"{stack['services']['orders']}/orders/{order_id}"
    return wait_for(lambda: (order := requests.get(url, timeout=10).json())["status"] in FINAL and order, 60)


def _shards(db: Any) -> list[tuple[int, int, int]]:
    """(available, reserved, sold) per shard."""
    docs = [db.document(f"products/{SKU}/stock_shards/{i}").get().to_dict() for i in range(len(SHARDS))]
    return [(d["available"], d.get("reserved", 0), d.get("sold", 0)) for d in docs]


def _available_in_api(stack: dict[str, Any]) -> int:
    products = requests.get(f"{stack['services']['orders']}/products", timeout=10).json()["products"]
    return next(p["available"] for p in products if p["sku"] == SKU)


def test_a_flash_sale_on_a_sharded_product_sells_exactly_its_stock(hot: dict[str, Any], db: Any) -> None:
    with ThreadPoolExecutor(8) as pool:
        order_ids = list(pool.map(lambda _: _place(hot), range(16)))

    statuses = [_final(hot, order_id)["status"] for order_id in order_ids]

    assert (statuses.count("CONFIRMED"), statuses.count("CANCELLED")) == (10, 6)
    wait_for(lambda: _shards(db) == [(0, 0, n) for n in SHARDS], 30, "every shard sold out, none held")
    assert _available_in_api(hot) == 0


def test_an_order_larger_than_any_shard_takes_from_several_and_a_cancellation_gives_each_back(
    hot: dict[str, Any], db: Any
) -> None:
    declined = _place(hot, quantity=7, token="tok_declined")

    assert _final(hot, declined)["status"] == "CANCELLED"
    reservation = db.collection("reservations").document(declined).get().to_dict()
    taken = reservation["shards"][SKU]
    assert sum(taken.values()) == 7 and len(taken) >= 2  # no shard holds 7
    assert all(part <= SHARDS[int(index)] for index, part in taken.items())
    wait_for(lambda: _shards(db) == [(n, 0, 0) for n in SHARDS], 30, "each shard got back what it gave")

    confirmed = _place(hot, quantity=7)

    assert _final(hot, confirmed)["status"] == "CONFIRMED"
    wait_for(lambda: sum(sold for _, _, sold in _shards(db)) == 7, 30, "seven sold")
    assert all(a + r + s == n for (a, r, s), n in zip(_shards(db), SHARDS, strict=True))
    assert _available_in_api(hot) == 3
