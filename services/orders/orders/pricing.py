"""Pricing an order from the catalog, pure: the client never sets a price."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: int  # minor units
    currency: str
    available: int


@dataclass(frozen=True)
class PricedLine:
    sku: str
    quantity: int
    unit_price: int


@dataclass(frozen=True)
class PricedOrder:
    lines: tuple[PricedLine, ...]
    total: int


class PricingError(ValueError):
    """Lines that cannot be priced; ``details`` name each one."""

    def __init__(self, details: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{d['field']}: {d['message']}" for d in details))
        self.details = details


def price_order(lines: list[tuple[str, int]], catalog: Mapping[str, Product | None], currency: str) -> PricedOrder:
    details = []
    priced = []
    for index, (sku, quantity) in enumerate(lines):
        product = catalog.get(sku)
        if product is None:
            details.append({"field": f"items[{index}].sku", "message": f"unknown SKU {sku!r}"})
            continue
        if product.currency != currency:
            details.append({"field": "currency", "message": f"{sku} is sold in {product.currency}, not {currency}"})
            continue
        priced.append(PricedLine(sku, quantity, product.price))
    if details:
        raise PricingError(details)
    return PricedOrder(tuple(priced), sum(line.quantity * line.unit_price for line in priced))
