"""The simulated gateway against the Firestore emulator: idempotent by key, like a real gateway."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from payments.gateway import ChargeRequest, GatewayRequestError, GatewayUnavailableError, RefundRequest
from payments.simulated_gateway import COLLECTION, SimulatedGateway, SimulatorSettings


@pytest.fixture
def gateway(db: Any) -> SimulatedGateway:
    return SimulatedGateway(lambda: db, SimulatorSettings(limit=10_000, transient_failures=2))


def _charge(token: str = "tok_visa", amount: int = 2400, key: str | None = None) -> ChargeRequest:
    return ChargeRequest(key or f"charge:{uuid.uuid4()}", "o-1", amount, "EUR", token)


def _documents(db: Any, kind: str) -> list[dict[str, Any]]:
    return [doc.to_dict() for doc in db.collection(COLLECTION).stream() if doc.get("kind") == kind]


def test_same_key_returns_the_first_charge_and_moves_money_once(gateway: SimulatedGateway, db: Any) -> None:
    request = _charge()

    first, second = gateway.charge(request), gateway.charge(request)

    assert first.approved and first == second
    charges = _documents(db, "charge")
    assert len(charges) == 1
    assert charges[0]["idempotency_key"] == request.idempotency_key


def test_duplicates_charging_at_once_make_one_charge(gateway: SimulatedGateway, db: Any) -> None:
    request = _charge()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: gateway.charge(request), range(8)))

    assert len({result.charge_id for result in results}) == 1
    assert len(_documents(db, "charge")) == 1


def test_tok_transient_fails_twice_per_key_then_approves(gateway: SimulatedGateway, db: Any) -> None:
    request = _charge("tok_transient")

    for _ in range(2):
        with pytest.raises(GatewayUnavailableError):
            gateway.charge(request)
    result = gateway.charge(request)

    assert result.approved
    (charge,) = _documents(db, "charge")
    assert (charge["status"], charge["attempts"]) == ("approved", 3)


def test_declines_are_final_answers(gateway: SimulatedGateway) -> None:
    declined = gateway.charge(_charge("tok_declined"))
    too_much = gateway.charge(_charge(amount=10_001))

    assert (declined.approved, declined.decline_reason) == (False, "declined")
    assert (too_much.approved, too_much.decline_reason) == (False, "limit_exceeded")
    assert "10001" in too_much.detail


def test_key_reused_for_another_amount_is_refused(gateway: SimulatedGateway) -> None:
    request = _charge()
    gateway.charge(request)

    with pytest.raises(GatewayRequestError, match="another charge"):
        gateway.charge(_charge(amount=1, key=request.idempotency_key))


def test_refund_is_idempotent_by_key_and_never_exceeds_the_charge(gateway: SimulatedGateway, db: Any) -> None:
    charge = gateway.charge(_charge(amount=2400))
    assert charge.charge_id is not None
    refund = RefundRequest("refund:1", charge.charge_id, "o-1", 2400, "EUR")

    first, again = gateway.refund(refund), gateway.refund(refund)

    assert first == again and first.amount == 2400
    assert len(_documents(db, "refund")) == 1
    with pytest.raises(GatewayRequestError, match="exceeds"):
        gateway.refund(RefundRequest("refund:2", charge.charge_id, "o-1", 1, "EUR"))


def test_refund_of_an_unknown_charge_is_refused(gateway: SimulatedGateway) -> None:
    with pytest.raises(GatewayRequestError, match="no charge"):
        gateway.refund(RefundRequest("refund:x", "ch_missing", "o-1", 1, "EUR"))
