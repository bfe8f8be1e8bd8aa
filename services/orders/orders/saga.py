"""The order saga's decisions, pure: how each inventory or payment outcome moves an order.

An order is PENDING until both sides have answered. Both succeeded → CONFIRMED (emit OrderConfirmed).
Either failed → CANCELLED with the reason (emit OrderCancelled, so the other side compensates: stock
released, payment refunded). Outcomes may arrive in any order and more than once; a repeated or late outcome
never moves a final order again and never emits a second event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from eventkit.catalog.orders import (
    INVENTORY_REJECTED,
    INVENTORY_RELEASED,
    INVENTORY_RESERVED,
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    PAYMENT_AUTHORIZED,
    PAYMENT_DECLINED,
    PAYMENT_REFUNDED,
)

PENDING, CONFIRMED, CANCELLED = "PENDING", "CONFIRMED", "CANCELLED"

# event type -> (side, the side's new state)
OUTCOMES = {
    INVENTORY_RESERVED: ("inventory", "RESERVED"),
    INVENTORY_REJECTED: ("inventory", "REJECTED"),
    INVENTORY_RELEASED: ("inventory", "RELEASED"),
    PAYMENT_AUTHORIZED: ("payment", "AUTHORIZED"),
    PAYMENT_DECLINED: ("payment", "DECLINED"),
    PAYMENT_REFUNDED: ("payment", "REFUNDED"),
}


@dataclass(frozen=True)
class SagaState:
    status: str = PENDING
    inventory: str = PENDING
    payment: str = PENDING
    reason: str | None = None


@dataclass(frozen=True)
class Transition:
    state: SagaState
    emit: str | None = None  # ORDER_CONFIRMED, ORDER_CANCELLED or nothing


def apply(state: SagaState, event_type: str, detail: str = "") -> Transition:
    """The order's next state after one outcome event (``detail`` explains a failure)."""
    side, outcome = OUTCOMES[event_type]
    # Compensation results (RELEASED, REFUNDED) are recorded but decide nothing.
    if outcome in ("RELEASED", "REFUNDED"):
        return Transition(replace(state, **{side: outcome}))
    state = replace(state, **{side: outcome})
    if state.status != PENDING:
        return Transition(state)
    if state.inventory == "REJECTED" or state.payment == "DECLINED":
        reason = detail or ("out of stock" if state.inventory == "REJECTED" else "payment declined")
        return Transition(replace(state, status=CANCELLED, reason=reason), ORDER_CANCELLED)
    if state.inventory == "RESERVED" and state.payment == "AUTHORIZED":
        return Transition(replace(state, status=CONFIRMED), ORDER_CONFIRMED)
    return Transition(state)
