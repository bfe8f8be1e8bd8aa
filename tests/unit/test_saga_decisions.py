"""The order saga's pure decisions: any arrival order, duplicates, late outcomes."""

from __future__ import annotations

import itertools

import pytest

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
from orders.saga import CANCELLED, CONFIRMED, PENDING, SagaState, apply


def _run(*events: str) -> tuple[SagaState, list[str]]:
    state, emitted = SagaState(), []
    for event in events:
        transition = apply(state, event, "")
        state = transition.state
        if transition.emit:
            emitted.append(transition.emit)
    return state, emitted


@pytest.mark.parametrize("order", list(itertools.permutations([INVENTORY_RESERVED, PAYMENT_AUTHORIZED])))
def test_both_successes_in_any_order_confirm_once(order: tuple[str, ...]) -> None:
    state, emitted = _run(*order)

    assert state.status == CONFIRMED
    assert emitted == [ORDER_CONFIRMED]


@pytest.mark.parametrize(
    "events",
    [
        (INVENTORY_REJECTED, PAYMENT_AUTHORIZED),
        (PAYMENT_AUTHORIZED, INVENTORY_REJECTED),
        (INVENTORY_RESERVED, PAYMENT_DECLINED),
        (PAYMENT_DECLINED, INVENTORY_RESERVED),
        (PAYMENT_DECLINED, INVENTORY_REJECTED),
    ],
)
def test_any_failure_cancels_once_whatever_arrives_after(events: tuple[str, ...]) -> None:
    state, emitted = _run(*events)

    assert state.status == CANCELLED
    assert emitted == [ORDER_CANCELLED]


def test_duplicates_and_late_outcomes_never_move_a_final_order_or_emit_again() -> None:
    state, emitted = _run(
        INVENTORY_RESERVED, INVENTORY_RESERVED, PAYMENT_AUTHORIZED, PAYMENT_AUTHORIZED, INVENTORY_RESERVED
    )

    assert state.status == CONFIRMED
    assert emitted == [ORDER_CONFIRMED]


def test_one_side_alone_leaves_the_order_pending() -> None:
    assert _run(INVENTORY_RESERVED)[0].status == PENDING
    assert _run(PAYMENT_AUTHORIZED)[0].status == PENDING


def test_compensation_results_are_recorded_but_decide_nothing() -> None:
    state, emitted = _run(INVENTORY_RESERVED, PAYMENT_DECLINED, INVENTORY_RELEASED)
    assert (state.status, state.inventory, emitted) == (CANCELLED, "RELEASED", [ORDER_CANCELLED])

    state, emitted = _run(PAYMENT_AUTHORIZED, INVENTORY_REJECTED, PAYMENT_REFUNDED)
    assert (state.status, state.payment, emitted) == (CANCELLED, "REFUNDED", [ORDER_CANCELLED])


def test_cancel_reason_carries_the_failing_sides_detail() -> None:
    transition = apply(SagaState(), INVENTORY_REJECTED, "inventory out_of_stock: LAMP-1")

    assert transition.state.reason == "inventory out_of_stock: LAMP-1"
