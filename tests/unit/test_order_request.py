"""The orders API's request model and pricing, without I/O."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orders.order_request import OrderRequest, validation_details
from orders.pricing import PricingError, Product, price_order

BODY = {
    "customer_id": "c-1",
    "email": "ana@example.com",
    "items": [{"sku": "MUG-1", "quantity": 2}],
    "payment_token": "tok_ok",
    "currency": "EUR",
}
CATALOG = {"MUG-1": Product("MUG-1", "Mug", 1200, "EUR", 5), "TEE-M": Product("TEE-M", "Tee", 2500, "EUR", 1)}


def test_every_bad_field_is_named_once() -> None:
    with pytest.raises(ValidationError) as raised:
        OrderRequest.model_validate({**BODY, "email": "x", "items": [{"sku": "MUG-1", "quantity": -1}], "extra": 1})

    fields = {detail["field"] for detail in validation_details(raised.value)}
    assert fields == {"email", "items[0].quantity", "extra"}


def test_the_same_sku_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="appears twice"):
        OrderRequest.model_validate({**BODY, "items": [{"sku": "MUG-1", "quantity": 1}] * 2})


def test_fingerprint_changes_with_content_only() -> None:
    same = OrderRequest.model_validate(dict(reversed(list(BODY.items()))))
    other = OrderRequest.model_validate({**BODY, "items": [{"sku": "MUG-1", "quantity": 3}]})

    assert OrderRequest.model_validate(BODY).fingerprint() == same.fingerprint()
    assert OrderRequest.model_validate(BODY).fingerprint() != other.fingerprint()


def test_total_comes_from_catalog_prices() -> None:
    priced = price_order([("MUG-1", 2), ("TEE-M", 1)], CATALOG, "EUR")

    assert priced.total == 2 * 1200 + 2500
    assert [line.unit_price for line in priced.lines] == [1200, 2500]


def test_unknown_skus_and_foreign_currency_are_named() -> None:
    with pytest.raises(PricingError) as raised:
        price_order([("NOPE", 1), ("MUG-1", 1)], {**CATALOG, "NOPE": None}, "USD")

    assert raised.value.details == [
        {"field": "items[0].sku", "message": "unknown SKU 'NOPE'"},
        {"field": "currency", "message": "MUG-1 is sold in EUR, not USD"},
    ]
