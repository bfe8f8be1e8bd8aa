"""The shop's domain event types and their payload models: the contract between services.

Type names are ``shop.<aggregate>.<what happened>.v<N>``; a new incompatible schema gets a new version (and a
new type), so a consumer that meets a version it does not know fails permanently instead of misreading it.
One module per domain (``orders``, ...), each with a ``MODELS`` map of type → payload model; add a domain by
adding its module to ``DOMAINS`` and its aggregates to ``_AGGREGATES``. Amounts are integers in the currency's
minor unit (cents), never floats.

Nothing here imports a domain module up front: ``CATALOG`` loads a domain on the first lookup of one of its
types, and the order names (``ORDER_PLACED``, ``OrderPlaced`` ...) load ``orders`` when first used, so a
service pays only for the domains it handles.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from eventkit.catalog._lazy import LazyCatalog
from eventkit.events import EventCatalog

if TYPE_CHECKING:
    from eventkit.catalog.orders import *  # noqa: F403 — the order types are the catalog's most used names
    from eventkit.catalog.orders import OrderLine, OrderPlaced  # explicit for readers and type checkers

    DOMAINS: tuple[ModuleType, ...]

_DOMAIN_MODULES = ("eventkit.catalog.orders", "eventkit.catalog.telemetry", "eventkit.catalog.images")
# Aggregate (second part of a type name) -> the domain module defining its types; a unit test checks it.
_AGGREGATES = {
    "order": "eventkit.catalog.orders",
    "inventory": "eventkit.catalog.orders",
    "payment": "eventkit.catalog.orders",
    "telemetry": "eventkit.catalog.telemetry",
    "image": "eventkit.catalog.images",
}


def _module(name: str) -> ModuleType:
    __import__(name)  # not importlib.import_module, whose imports `python -X importtime` does not list
    return sys.modules[name]


def _domains() -> tuple[ModuleType, ...]:
    return tuple(_module(name) for name in _DOMAIN_MODULES)


def build_catalog() -> EventCatalog:
    """A catalog with every domain's types registered now."""
    catalog = EventCatalog()
    for domain in _domains():
        for event_type, model in domain.MODELS.items():
            catalog.register(event_type, model)
    return catalog


CATALOG: EventCatalog = LazyCatalog(_AGGREGATES)


def __getattr__(name: str) -> Any:
    # On first use: DOMAINS, the domain modules, and the order module's public names (the package used to run
    # ``from eventkit.catalog.orders import *``). Cached in the module, so each is looked up here once.
    if name == "DOMAINS":
        value: Any = _domains()
    elif f"{__name__}.{name}" in _DOMAIN_MODULES:
        value = _module(f"{__name__}.{name}")
    elif not name.startswith("_") and hasattr(orders := _module(f"{__name__}.orders"), name):
        value = getattr(orders, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = ["CATALOG", "DOMAINS", "OrderLine", "OrderPlaced", "build_catalog"]
