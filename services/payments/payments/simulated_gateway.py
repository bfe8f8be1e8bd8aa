"""The default gateway: a deterministic simulation, kept in Firestore so tests can count what it did.

Rules (:func:`simulate_charge`, pure):

- token ``tok_transient`` fails transiently the first ``GATEWAY_TRANSIENT_FAILURES`` times per idempotency key
  (default 2), so Pub/Sub's redelivery is exercised; then it is treated like any other token;
- token ``tok_declined`` is declined (``declined``);
- an amount above ``PAYMENT_LIMIT`` (minor units, default 1 000 000) is declined (``limit_exceeded``);
- anything else is approved.

Like a real gateway it is idempotent by key: each charge and refund is one document in ``gateway_charges``
whose id is the (escaped) idempotency key; the same key returns the stored result, a key reused for a different
request is refused, and refunds never exceed what was charged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import quote

from eventkit import ConfigError, run_transaction
from eventkit.errors import RetryableError
from payments.gateway import (
    ChargeRequest,
    ChargeResult,
    GatewayRequestError,
    GatewayUnavailableError,
    RefundRequest,
    RefundResult,
)

COLLECTION = "gateway_charges"
TRANSIENT_TOKEN = "tok_transient"
DECLINED_TOKEN = "tok_declined"
DEFAULT_TRANSIENT_FAILURES = 2
DEFAULT_LIMIT = 1_000_000
T = TypeVar("T")


class Verdict(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    LIMIT_EXCEEDED = "limit_exceeded"
    TRANSIENT = "transient"


def simulate_charge(token: str, amount: int, *, limit: int, transient_failures: int, failures_so_far: int) -> Verdict:
    """The simulator's rules, in order; ``failures_so_far`` counts transient failures already given to this key."""
    if token == TRANSIENT_TOKEN and failures_so_far < transient_failures:
        return Verdict.TRANSIENT
    if token == DECLINED_TOKEN:
        return Verdict.DECLINED
    if amount > limit:
        return Verdict.LIMIT_EXCEEDED
    return Verdict.APPROVED


@dataclass(frozen=True)
class SimulatorSettings:
    limit: int = DEFAULT_LIMIT
    transient_failures: int = DEFAULT_TRANSIENT_FAILURES

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SimulatorSettings:
        """``PAYMENT_LIMIT`` (> 0) and ``GATEWAY_TRANSIENT_FAILURES`` (≥ 0); a bad value names its variable."""
        return cls(
            limit=_int_var(environ, "PAYMENT_LIMIT", DEFAULT_LIMIT, minimum=1),
            transient_failures=_int_var(environ, "GATEWAY_TRANSIENT_FAILURES", DEFAULT_TRANSIENT_FAILURES, minimum=0),
        )


def _int_var(environ: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be an integer ≥ {minimum}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be an integer ≥ {minimum}")
    return value


def _document_id(idempotency_key: str) -> str:
    return quote(idempotency_key, safe="")


def _opaque_id(prefix: str, idempotency_key: str) -> str:
    return f"{prefix}_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}"


class SimulatedGateway:
    name = "simulated"

    def __init__(
        self,
        client: Callable[[], Any],
        settings: SimulatorSettings,
        *,
        collection: str = COLLECTION,
        contention_budget: float = 20.0,
    ) -> None:
        self._client = client  # a callable, so the Firestore client is created on first use
        self.settings = settings
        self.collection = collection
        self.contention_budget = contention_budget

    def _ref(self, idempotency_key: str) -> Any:
        return self._client().collection(self.collection).document(_document_id(idempotency_key))

    def charge(self, request: ChargeRequest) -> ChargeResult:
        from google.cloud import firestore

        ref = self._ref(request.idempotency_key)

        @firestore.transactional
        def attempt(transaction: Any) -> dict[str, Any]:
            snapshot = ref.get(transaction=transaction)
            stored = snapshot.to_dict() if snapshot.exists else None
            if stored is not None:
                _same_request(stored, request)
                if stored["status"] != Verdict.TRANSIENT.value:
                    return stored  # a final answer: the same key gets it again, no second charge
            failures = int(stored["attempts"]) if stored else 0
            verdict = simulate_charge(
                request.token,
                request.amount,
                limit=self.settings.limit,
                transient_failures=self.settings.transient_failures,
                failures_so_far=failures,
            )
            now = datetime.now(UTC)
            record = {
                "kind": "charge",
                "idempotency_key": request.idempotency_key,
                "order_id": request.order_id,
                "amount": request.amount,
                "currency": request.currency,
                "token": request.token,
                "status": verdict.value,
                "attempts": failures + 1,
                "charge_id": _opaque_id("ch", request.idempotency_key) if verdict is Verdict.APPROVED else None,
                "refunded_amount": 0,
                "created_at": stored["created_at"] if stored else now,
                "updated_at": now,
            }
            transaction.set(ref, record)
            return record

        record = self._transact(attempt, request.idempotency_key)
        if record["status"] == Verdict.TRANSIENT.value:
            raise GatewayUnavailableError(
                f"simulated gateway: transient failure {record['attempts']} for key {request.idempotency_key!r}"
            )
        if record["status"] == Verdict.APPROVED.value:
            return ChargeResult(approved=True, charge_id=record["charge_id"])
        detail = (
            f"amount {request.amount} is above the limit {self.settings.limit}"
            if record["status"] == Verdict.LIMIT_EXCEEDED.value
            else "card declined"
        )
        return ChargeResult(approved=False, decline_reason=record["status"], detail=detail)

    def refund(self, request: RefundRequest) -> RefundResult:
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        refund_ref = self._ref(request.idempotency_key)
        charges = (
            self._client()
            .collection(self.collection)
            .where(filter=FieldFilter("charge_id", "==", request.charge_id))
            .limit(1)
            .get()
        )
        if not charges:
            raise GatewayRequestError(f"refund {request.idempotency_key!r}: no charge {request.charge_id!r}")
        charge_ref = charges[0].reference

        @firestore.transactional
        def attempt(transaction: Any) -> dict[str, Any]:
            refund_snapshot = refund_ref.get(transaction=transaction)
            charge = charge_ref.get(transaction=transaction).to_dict()
            if refund_snapshot.exists:
                stored = refund_snapshot.to_dict()
                if stored["charge_id"] != request.charge_id or stored["amount"] != request.amount:
                    raise GatewayRequestError(
                        f"idempotency key {request.idempotency_key!r} was used for another refund"
                    )
                return stored
            refundable = int(charge["amount"]) - int(charge.get("refunded_amount", 0))
            if request.amount > refundable:
                raise GatewayRequestError(
                    f"refund of {request.amount} for charge {request.charge_id} exceeds the {refundable} refundable"
                )
            now = datetime.now(UTC)
            record = {
                "kind": "refund",
                "idempotency_key": request.idempotency_key,
                "order_id": request.order_id,
                "charge_id": request.charge_id,
                "refund_id": _opaque_id("re", request.idempotency_key),
                "amount": request.amount,
                "currency": request.currency,
                "status": "succeeded",
                "created_at": now,
                "updated_at": now,
            }
            transaction.set(refund_ref, record)
            transaction.update(charge_ref, {"refunded_amount": int(charge.get("refunded_amount", 0)) + request.amount})
            return record

        record = self._transact(attempt, request.idempotency_key)
        return RefundResult(refund_id=record["refund_id"], amount=record["amount"])

    def _transact(self, attempt: Callable[[Any], T], key: str) -> T:
        """Duplicates charging at once contend on one document: eventkit retries aborts within a budget."""
        try:
            return run_transaction(self._client(), attempt, f"gateway key {key!r}", self.contention_budget)
        except RetryableError as exc:
            raise GatewayUnavailableError(f"simulated gateway busy for key {key!r}: {exc}") from exc


def _same_request(stored: Mapping[str, Any], request: ChargeRequest) -> None:
    if (stored["amount"], stored["currency"], stored["token"]) != (request.amount, request.currency, request.token):
        raise GatewayRequestError(
            f"idempotency key {request.idempotency_key!r} was used for another charge "
            f"({stored['amount']} {stored['currency']}); expected the same amount, currency and token"
        )
