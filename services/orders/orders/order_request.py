"""The body of ``POST /orders``: what a client may send, checked field by field.

Prices are not part of the request: they come from the catalog in Firestore (see pricing.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eventkit.catalog.orders import Currency, Email, Sku

MAX_LINES = 50
MAX_QUANTITY = 100  # per line: more is a typo or abuse, not a shop order


class RequestLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Sku
    quantity: int = Field(ge=1, le=MAX_QUANTITY, strict=True)


class OrderRequest(BaseModel):
    # Unknown fields are refused: a client that misspells "payment_token" should hear about it.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    customer_id: str = Field(min_length=1, max_length=128)
    email: Email
    items: list[RequestLine] = Field(min_length=1, max_length=MAX_LINES)
    payment_token: str = Field(min_length=1, max_length=256)
    currency: Currency

    @field_validator("items")
    @classmethod
    def _distinct_skus(cls, items: list[RequestLine]) -> list[RequestLine]:
        seen: set[str] = set()
        for line in items:
            if line.sku in seen:
                raise ValueError(f"sku {line.sku!r} appears twice; put the total quantity on one line")
            seen.add(line.sku)
        return items

    def fingerprint(self) -> str:
        """Identifies the request's content, to tell an Idempotency-Key replay from a key reused for another body."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Each problem as ``{"field": "items[0].quantity", "message": "..."}``."""
    details = []
    for error in exc.errors():
        field = ""
        for part in error.get("loc", ()):
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        message = "is required" if error.get("type") == "missing" else error.get("msg", "is invalid")
        message = message.removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "is not a known field"
        details.append({"field": field or "(body)", "message": message})
    return details
