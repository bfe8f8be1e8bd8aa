"""Payments' pure decisions and the simulated gateway's rules."""

from __future__ import annotations

import pytest

from eventkit import ConfigError
from payments.payment import (
    CancelledStep,
    PaymentState,
    PaymentStatus,
    PlacedStep,
    charge_key,
    on_cancelled,
    on_placed,
    refund_key,
)
from payments.simulated_gateway import SimulatorSettings, Verdict, simulate_charge

KEY = charge_key("event-1")


def test_gateway_keys_derive_from_the_order_placed_event_id() -> None:
    assert charge_key("event-1") == "charge:event-1"
    assert charge_key("event-1") != charge_key("event-2")
    assert refund_key(charge_key("event-1")) == "refund:charge:event-1"


def test_first_order_placed_claims_before_charging() -> None:
    assert on_placed(None, key=KEY, has_token=True) is PlacedStep.CLAIM


def test_order_without_token_is_declined_without_a_claim() -> None:
    assert on_placed(None, key=KEY, has_token=False) is PlacedStep.DECLINE_MISSING_TOKEN


def test_retry_of_our_own_claim_charges_again_with_the_same_key() -> None:
    assert on_placed(PaymentState(PaymentStatus.CHARGING, KEY), key=KEY, has_token=True) is PlacedStep.CHARGE


def test_another_events_charge_in_flight_is_left_alone() -> None:
    other = PaymentState(PaymentStatus.CHARGING, charge_key("event-2"))

    assert on_placed(other, key=KEY, has_token=True) is PlacedStep.NOTHING


@pytest.mark.parametrize("status", [PaymentStatus.AUTHORIZED, PaymentStatus.DECLINED, PaymentStatus.REFUNDED])
def test_decided_payment_is_never_charged_again(status: PaymentStatus) -> None:
    assert on_placed(PaymentState(status, KEY), key=KEY, has_token=True) is PlacedStep.NOTHING


def test_order_placed_after_its_cancellation_is_declined_not_charged() -> None:
    tombstone = PaymentState(PaymentStatus.CANCELLED)

    assert on_placed(tombstone, key=KEY, has_token=True) is PlacedStep.DECLINE_CANCELLED
    assert on_placed(tombstone, key=KEY, has_token=False) is PlacedStep.DECLINE_CANCELLED


def test_cancellation_refunds_an_authorized_payment() -> None:
    assert on_cancelled(PaymentState(PaymentStatus.AUTHORIZED, KEY)) is CancelledStep.REFUND


def test_cancellation_before_any_charge_leaves_a_tombstone() -> None:
    assert on_cancelled(None) is CancelledStep.TOMBSTONE


def test_cancellation_waits_while_a_charge_is_in_flight() -> None:
    assert on_cancelled(PaymentState(PaymentStatus.CHARGING, KEY)) is CancelledStep.WAIT


@pytest.mark.parametrize("status", [PaymentStatus.DECLINED, PaymentStatus.REFUNDED, PaymentStatus.CANCELLED])
def test_cancellation_with_nothing_charged_or_already_refunded_does_nothing(status: PaymentStatus) -> None:
    assert on_cancelled(PaymentState(status, KEY)) is CancelledStep.NOTHING


def _verdict(token: str, amount: int = 100, failures_so_far: int = 0) -> Verdict:
    return simulate_charge(token, amount, limit=1000, transient_failures=2, failures_so_far=failures_so_far)


def test_simulator_approves_an_ordinary_token_within_the_limit() -> None:
    assert _verdict("tok_visa", amount=1000) is Verdict.APPROVED


def test_simulator_declines_tok_declined() -> None:
    assert _verdict("tok_declined") is Verdict.DECLINED


def test_simulator_declines_amounts_above_the_limit() -> None:
    assert _verdict("tok_visa", amount=1001) is Verdict.LIMIT_EXCEEDED


def test_simulator_fails_tok_transient_the_first_n_times_then_approves() -> None:
    assert [_verdict("tok_transient", failures_so_far=n) for n in range(3)] == [
        Verdict.TRANSIENT,
        Verdict.TRANSIENT,
        Verdict.APPROVED,
    ]


def test_simulator_settings_default_and_from_environment() -> None:
    assert SimulatorSettings.from_env({}) == SimulatorSettings(limit=1_000_000, transient_failures=2)
    assert SimulatorSettings.from_env({"PAYMENT_LIMIT": "500", "GATEWAY_TRANSIENT_FAILURES": "0"}) == (
        SimulatorSettings(limit=500, transient_failures=0)
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PAYMENT_LIMIT": "0"}, "PAYMENT_LIMIT"),
        ({"PAYMENT_LIMIT": "ten"}, "PAYMENT_LIMIT"),
        ({"GATEWAY_TRANSIENT_FAILURES": "-1"}, "GATEWAY_TRANSIENT_FAILURES"),
    ],
)
def test_bad_simulator_settings_name_their_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        SimulatorSettings.from_env(env)
