"""eventkit: the shared event runtime of the shop's services.

Modules, one job each: ``delivery`` (read any delivery form), ``pubsub_message`` and ``storage_object`` (the
envelopes), ``events`` and ``catalog`` (domain CloudEvents and their payload models), ``publish``,
``idempotency`` (the ledger), ``outcome`` (ack or retry), ``failures`` (permanent-failure records),
``consumer`` (the runtime a service's main.py uses), ``structured_log`` and ``trace``, ``config``, ``clients``.
"""

from eventkit.consumer import Consumer, HandlerContext
from eventkit.delivery import Delivery, Transport, read_delivery
from eventkit.errors import (
    ConfigError,
    InvalidPayloadError,
    MalformedDeliveryError,
    PermanentError,
    RetryableError,
    UnknownEventTypeError,
)
from eventkit.events import DomainEvent
from eventkit.storage_object import ObjectFinalized

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
