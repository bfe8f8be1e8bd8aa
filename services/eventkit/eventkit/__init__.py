"""eventkit: the shared event runtime of the shop's services.

The public surface, what services import (tests/unit/test_layering.py enforces it): this package's names below,
``eventkit.catalog`` (event types and payload models, and its ``orders``/``images``/``telemetry`` modules),
``eventkit.errors``, ``eventkit.http_api`` (JSON APIs), ``eventkit.memory`` (in-memory stores for tests), and
for the operator's tools ``eventkit.failures``, ``eventkit.failure_records`` and ``eventkit.replay`` (listing,
replaying and discarding failure records: the console service and ``python -m dlq``), and ``eventkit.processed``
(what the ledger keeps of each processed delivery: an order's hops, each subscription's recent deliveries), and
``eventkit.newest_first`` (one page of a listing, newest first, with a cursor: the console's lists and the records').
Every other module is the runtime's own (docs/eventkit.md): ``service`` and ``consumer`` (the runtime),
``context`` (the handler API), ``delivery``, ``idempotency`` (the ledger), ``outbox``, ``publish``, ``failures``...
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
    from eventkit.config import Config, positive_int
    from eventkit.consumer import Consumer
    from eventkit.context import HandlerContext
    from eventkit.delivery import Delivery, Transport
    from eventkit.events import DomainEvent
    from eventkit.failures import FailedDelivery
    from eventkit.outbox import StagedEvent
    from eventkit.pubsub_message import PubSubMessage, message_from_envelope
    from eventkit.service import Service
    from eventkit.storage_object import FINALIZED_TYPE, ObjectFinalized
    from eventkit.transactions import run_read_write, run_transaction

# Imported on first access (PEP 562), not with the package: ``import eventkit.errors`` runs this file, and a
# service that never builds a Consumer (deadletters) would otherwise import the whole runtime, catalog and all.
_LAZY = {
    "Config": "eventkit.config",
    "positive_int": "eventkit.config",
    "Consumer": "eventkit.consumer",
    "Delivery": "eventkit.delivery",
    "DomainEvent": "eventkit.events",
    "FailedDelivery": "eventkit.failures",
    "FINALIZED_TYPE": "eventkit.storage_object",
    "HandlerContext": "eventkit.context",
    "ObjectFinalized": "eventkit.storage_object",
    "PubSubMessage": "eventkit.pubsub_message",
    "message_from_envelope": "eventkit.pubsub_message",
    "Service": "eventkit.service",
    "StagedEvent": "eventkit.outbox",
    "run_read_write": "eventkit.transactions",
    "run_transaction": "eventkit.transactions",
    "Transport": "eventkit.delivery",
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
    "FINALIZED_TYPE",
    "Config",
    "ConfigError",
    "Consumer",
    "Delivery",
    "DomainEvent",
    "FailedDelivery",
    "HandlerContext",
    "InvalidPayloadError",
    "MalformedDeliveryError",
    "ObjectFinalized",
    "PermanentError",
    "PubSubMessage",
    "RetryableError",
    "Service",
    "StagedEvent",
    "Transport",
    "UnknownEventTypeError",
    "message_from_envelope",
    "positive_int",
    "run_read_write",
    "run_transaction",
]
