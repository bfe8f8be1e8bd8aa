"""eventkit: the shared event runtime of the shop's services.

Modules, one job each: ``delivery`` (read any delivery form), ``pubsub_message`` and ``storage_object`` (the
envelopes), ``events`` and ``catalog`` (domain CloudEvents and their payload models), ``publish``,
``idempotency`` (the ledger), ``outcome`` (ack or retry), ``failures`` (permanent-failure records),
``consumer`` (the runtime a service's main.py uses), ``structured_log`` and ``trace``, ``config``, ``clients``,
``readiness`` (the ``GET /ready`` answer every service gives).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from eventkit.errors import (
    ConfigError,
    InvalidPayloadError,
    MalformedDeliveryError,
    PermanentError,
    RetryableError,
    UnknownEventTypeError,
)

if TYPE_CHECKING:
    from eventkit.consumer import Consumer, HandlerContext
    from eventkit.delivery import Delivery, Transport, read_delivery
    from eventkit.events import DomainEvent
    from eventkit.storage_object import ObjectFinalized

# Imported on first access (PEP 562), not with the package: ``import eventkit.errors`` runs this file, and a
# service that never builds a Consumer (deadletters) would otherwise import the whole runtime, catalog and all.
_LAZY = {
    "Consumer": "eventkit.consumer",
    "HandlerContext": "eventkit.consumer",
    "Delivery": "eventkit.delivery",
    "Transport": "eventkit.delivery",
    "read_delivery": "eventkit.delivery",
    "DomainEvent": "eventkit.events",
    "ObjectFinalized": "eventkit.storage_object",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    __import__(module)  # not importlib.import_module, whose imports `python -X importtime` does not list
    value = getattr(sys.modules[module], name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "ConfigError",
    "Consumer",
    "Delivery",
    "DomainEvent",
    "HandlerContext",
    "InvalidPayloadError",
    "MalformedDeliveryError",
    "ObjectFinalized",
    "PermanentError",
    "RetryableError",
    "Transport",
    "UnknownEventTypeError",
    "read_delivery",
]
