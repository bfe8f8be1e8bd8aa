"""The shop's domain event types and their payload models: the contract between services.

Type names are ``shop.<aggregate>.<what happened>.v<N>``; a new incompatible schema gets a new version (and a
new type), so a consumer that meets a version it does not know fails permanently instead of misreading it.
Amounts are integers in the currency's minor unit (cents), never floats.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eventkit.events import EventCatalog

ORDER_PLACED = "shop.order.placed.v1"

Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$")]
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class _Payload(BaseModel):
    # Tolerant reader: fields a newer producer adds are ignored, never an error.
    model_config = ConfigDict(extra="ignore", frozen=True)


class OrderLine(_Payload):
    sku: Sku
    quantity: int = Field(ge=1, le=1000)
    unit_price: int = Field(ge=0, description="minor units")


class OrderPlaced(_Payload):
    order_id: str = Field(min_length=1, max_length=128)
    customer_id: str = Field(min_length=1, max_length=128)
    items: list[OrderLine] = Field(min_length=1, max_length=100)
    total: int = Field(ge=0, description="minor units")
    currency: str

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not _CURRENCY.match(value):
            raise ValueError("must be an ISO 4217 code like 'EUR'")
        return value


def build_catalog() -> EventCatalog:
    catalog = EventCatalog()
    catalog.register(ORDER_PLACED, OrderPlaced)
    return catalog


CATALOG = build_catalog()
