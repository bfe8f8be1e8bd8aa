"""A catalog that imports a domain's module the first time one of its types is looked up.

A service handles the types of one or two domains; importing every domain's payload models at start-up (each
a pydantic class) was work most services never needed. Lookups stay exact: a type whose domain the prefix
table does not name, or that its domain lacks, loads every domain before the answer (the error lists them all).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from eventkit.events import EventCatalog

if TYPE_CHECKING:
    from pydantic import BaseModel


class LazyCatalog(EventCatalog):
    """``domains``: aggregate (``order`` in ``shop.order.placed.v1``) -> module with a ``MODELS`` map."""

    def __init__(self, domains: Mapping[str, str]) -> None:
        super().__init__()
        self._domains = dict(domains)
        self._pending = set(self._domains.values())
        self._lock = threading.Lock()

    def register(self, event_type: str, model: type[BaseModel]) -> None:
        self._load_for(event_type)  # a clash with a domain's own type is refused now, as in an eager catalog
        with self._lock:
            super().register(event_type, model)

    def model_for(self, event_type: str) -> type[BaseModel]:
        if event_type not in self._models:
            self._load_for(event_type)
        return super().model_for(event_type)

    @property
    def types(self) -> list[str]:
        self._load(*self._domains.values())
        return super().types

    def _load_for(self, event_type: str) -> None:
        parts = event_type.split(".") if isinstance(event_type, str) else []
        module = self._domains.get(parts[1]) if len(parts) > 2 and parts[0] == "shop" else None
        if module is not None:
            self._load(module)
        if event_type not in self._models:
            self._load(*self._domains.values())

    def _load(self, *modules: str) -> None:
        if not self._pending.intersection(modules):
            return
        with self._lock:
            for name in modules:
                if name in self._pending:
                    # Registered into a copy, published in one assignment: readers never see a half-loaded domain.
                    merged = EventCatalog()
                    merged._models = dict(self._models)
                    __import__(name)  # not importlib.import_module, whose imports -X importtime does not list
                    for event_type, model in sys.modules[name].MODELS.items():
                        merged.register(event_type, model)
                    self._models = merged._models
                    self._pending.discard(name)
