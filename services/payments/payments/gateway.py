"""The payment gateway adapter: what payments needs from a gateway, whichever one is behind it.

Every call carries an idempotency key, as real gateways expect (Stripe's ``Idempotency-Key``, Adyen's
``Idempotency-Key``): the same key with the same request returns the first call's result and never moves money
twice. That is what keeps a charge single when a delivery is retried after the gateway answered but before our
own write committed.

Outcomes: a :class:`ChargeResult` (approved or declined, both final); :class:`GatewayUnavailableError` for
trouble that may pass (the delivery is retried); :class:`GatewayRequestError` for a request the gateway will
never accept (the delivery is acknowledged and recorded as a failure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from eventkit import PermanentError, RetryableError


@dataclass(frozen=True)
class ChargeRequest:
    idempotency_key: str
    order_id: str
    amount: int  # minor units
    currency: str
    token: str


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    charge_id: str | None = None  # set when approved
    decline_reason: str | None = None  # "declined" | "limit_exceeded" when not approved
    detail: str = ""


@dataclass(frozen=True)
class RefundRequest:
    idempotency_key: str
    charge_id: str
    order_id: str
    amount: int  # minor units
    currency: str


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    amount: int


class GatewayUnavailableError(RetryableError):
    """The gateway did not give a final answer (timeout, 5xx, rate limit): retry with the same key."""


class GatewayRequestError(PermanentError):
    """The gateway refuses the request itself (a key reused for another request, a refund above the charge)."""

    reason = "gateway_request_rejected"


class PaymentGateway(Protocol):
    """One implementation per gateway; the default is :class:`simulated_gateway.SimulatedGateway`."""

    name: str

    def charge(self, request: ChargeRequest) -> ChargeResult: ...

    def refund(self, request: RefundRequest) -> RefundResult: ...
