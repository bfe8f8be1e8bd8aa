"""The shop's domain event types and their payload models: the contract between services.

Type names are ``shop.<aggregate>.<what happened>.v<N>``; a new incompatible schema gets a new version (and a
new type), so a consumer that meets a version it does not know fails permanently instead of misreading it.
One module per domain (``orders``, ...), each with a ``MODELS`` map of type → payload model; add a domain by
adding its module to ``DOMAINS``. Amounts are integers in the currency's minor unit (cents), never floats.
"""

from __future__ import annotations

from eventkit.catalog import images, orders, telemetry
from eventkit.catalog.orders import *  # noqa: F403 — the order types are the catalog's most used names
from eventkit.catalog.orders import OrderLine, OrderPlaced  # explicit for readers and type checkers
from eventkit.events import EventCatalog

DOMAINS = (orders, telemetry, images)


def build_catalog() -> EventCatalog:
    catalog = EventCatalog()
    for domain in DOMAINS:
        for event_type, model in domain.MODELS.items():
            catalog.register(event_type, model)
    return catalog


CATALOG = build_catalog()

__all__ = ["CATALOG", "DOMAINS", "OrderLine", "OrderPlaced", "build_catalog"]
