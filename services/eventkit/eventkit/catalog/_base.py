"""What every payload model shares."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Payload(BaseModel):
    # Tolerant reader: fields a newer producer adds are ignored, never an error. defer_build: a model's validator
    # is built when it first validates, so a service builds only the few of the catalog's models it uses.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


_CURRENCY = re.compile(r"^[A-Z]{3}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def _currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise ValueError("must be an ISO 4217 code like 'EUR'")
    return value


def _email(value: str) -> str:
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("must be an email address like 'ana@example.com'")
    return value


Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$")]
Currency = Annotated[str, AfterValidator(_currency)]
Email = Annotated[str, AfterValidator(_email)]
OrderId = Annotated[str, Field(min_length=1, max_length=128)]
# Amounts are integers in the currency's minor unit (cents), never floats.
Amount = Annotated[int, Field(ge=0)]
