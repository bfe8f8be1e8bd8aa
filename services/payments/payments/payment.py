"""Payments' decisions, pure: charge, decline, refund or wait, given what is known of the order's payment.

No I/O here: ``main.py`` reads ``payments/<order_id>``, asks these functions, calls the gateway, and writes what
they say. A payment document moves through::

    (none) --OrderPlaced, claim--> CHARGING --gateway answers--> AUTHORIZED | DECLINED
    (none) --OrderPlaced, no token--> DECLINED (missing_token)
    AUTHORIZED --OrderCancelled--> REFUNDED (one refund per charge, whatever the number of cancellations)
    (none) --OrderCancelled--> CANCELLED (tombstone) --late OrderPlaced--> no charge, PaymentDeclined(order_cancelled)

The CHARGING claim is created (``create()``, never overwritten) BEFORE the gateway is called, so a cancellation
always knows whether a charge may exist: it either wins (tombstone first: the late order is never charged) or
finds CHARGING and waits for the answer (it is retried) before refunding.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PaymentStatus(StrEnum):
    CHARGING = "CHARGING"
    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    REFUNDED = "REFUNDED"
    CANCELLED = "CANCELLED"  # tombstone: cancelled before its OrderPlaced was processed


@dataclass(frozen=True)
class PaymentState:
    """What main.py read from ``payments/<order_id>`` (``None`` when there is no document)."""

    status: PaymentStatus
    charge_key: str | None = None


class PlacedStep(StrEnum):
    CLAIM = "claim"  # create the CHARGING claim, then charge
    CHARGE = "charge"  # our own claim is there (a retry): charge again with the same key
    DECLINE_MISSING_TOKEN = "decline_missing_token"
    DECLINE_CANCELLED = "decline_cancelled"  # the tombstone is there: never charge
    NOTHING = "nothing"  # decided already, or another event's charge is in flight


class CancelledStep(StrEnum):
    TOMBSTONE = "tombstone"
    REFUND = "refund"
    WAIT = "wait"  # a charge is in flight: retry the cancellation once the gateway has answered
    NOTHING = "nothing"  # declined, refunded or cancelled already


def charge_key(order_placed_event_id: str) -> str:
    """The gateway idempotency key of an order's charge: derived from its ``OrderPlaced`` event id."""
    return f"charge:{order_placed_event_id}"


def refund_key(charge_key_: str) -> str:
    """One refund per charge: the key derives from the charge's, so two cancellations cannot refund twice."""
    return f"refund:{charge_key_}"


def on_placed(state: PaymentState | None, *, key: str, has_token: bool) -> PlacedStep:
    if state is None:
        return PlacedStep.CLAIM if has_token else PlacedStep.DECLINE_MISSING_TOKEN
    if state.status is PaymentStatus.CANCELLED:
        return PlacedStep.DECLINE_CANCELLED
    if state.status is PaymentStatus.CHARGING and state.charge_key == key:
        return PlacedStep.CHARGE
    return PlacedStep.NOTHING


def on_cancelled(state: PaymentState | None) -> CancelledStep:
    if state is None:
        return CancelledStep.TOMBSTONE
    if state.status is PaymentStatus.AUTHORIZED:
        return CancelledStep.REFUND
    if state.status is PaymentStatus.CHARGING:
        return CancelledStep.WAIT
    return CancelledStep.NOTHING
