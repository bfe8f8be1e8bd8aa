"""payments: charges each placed order through the gateway and refunds it when the order is cancelled.

The gateway is outside Firestore, so these routes are not ``exactly_once``; each one reads the payment
(``payments/<order_id>``), decides (payments/payment.py), calls the gateway with an idempotency key derived from the
event id, and then records the outcome, its outgoing event (outbox) and the ledger entry in ONE transaction
(``ctx.transact``). A retry after the gateway answered gets the same answer for the same key: no second charge.

- ``OrderPlaced`` → ``PaymentAuthorized`` | ``PaymentDeclined`` (``declined`` / ``limit_exceeded`` /
  ``missing_token``, or ``order_cancelled`` when the cancellation came first: nothing is charged).
- ``OrderCancelled`` after authorization → one refund → ``PaymentRefunded``; before any charge → tombstone.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from eventkit import ConfigError, Consumer, DomainEvent, HandlerContext, RetryableError
from eventkit.catalog import (
    ORDER_CANCELLED,
    ORDER_PLACED,
    PAYMENT_AUTHORIZED,
    PAYMENT_DECLINED,
    PAYMENT_REFUNDED,
    OrderCancelled,
    OrderPlaced,
)
from payments.gateway import ChargeRequest, ChargeResult, RefundRequest, RefundResult
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
from payments.simulated_gateway import SimulatedGateway, SimulatorSettings

PAYMENTS = "payments"
BUS = "order-events"

consumer = Consumer("payments", topics=[BUS])
if os.environ.get("PAYMENT_GATEWAY", "simulated") != "simulated":
    raise ConfigError(f"PAYMENT_GATEWAY={os.environ['PAYMENT_GATEWAY']!r}: the only gateway adapter is 'simulated'")
gateway = SimulatedGateway(lambda: consumer.db, SimulatorSettings.from_env(os.environ))


def _payment_document(event: DomainEvent) -> list[str]:
    """A charge and a cancellation of one order both update its payment document (Consumer.on(serialize_on=...))."""
    return [f"{PAYMENTS}/{event.data.order_id}"]  # type: ignore[attr-defined]


@consumer.on(ORDER_PLACED, exactly_once=False, serialize_on=_payment_document)
def charge_order(event: DomainEvent, ctx: HandlerContext) -> None:
    order: OrderPlaced = event.data  # type: ignore[assignment]
    ref = ctx.db.collection(PAYMENTS).document(order.order_id)
    key = charge_key(event.id)
    step = on_placed(_state(ref.get()), key=key, has_token=bool(order.payment_token))
    if step is PlacedStep.CLAIM:
        step = _claim(ref, order, key, event.id)
    result = None
    if step is PlacedStep.CHARGE:
        request = ChargeRequest(key, order.order_id, order.total, order.currency, order.payment_token or "")
        result = gateway.charge(request)  # GatewayUnavailableError → 503 → Pub/Sub retries with the same key
    ctx.transact(lambda c: _record_charge(c, ref, order, event.id, key, result))


@consumer.on(ORDER_CANCELLED, exactly_once=False, serialize_on=_payment_document)
def refund_order(event: DomainEvent, ctx: HandlerContext) -> None:
    cancelled: OrderCancelled = event.data  # type: ignore[assignment]
    ref = ctx.db.collection(PAYMENTS).document(cancelled.order_id)
    snapshot = ref.get()
    step = on_cancelled(_state(snapshot))
    if step is CancelledStep.WAIT:
        raise RetryableError(f"order {cancelled.order_id}: a charge is in flight; cancel once the gateway answers")
    refund = None
    if step is CancelledStep.REFUND:
        payment = snapshot.to_dict()
        refund = gateway.refund(
            RefundRequest(
                refund_key(payment["charge_key"]),
                payment["payment_id"],
                cancelled.order_id,
                payment["amount"],
                payment["currency"],
            )
        )
    ctx.transact(lambda c: _record_cancellation(c, ref, cancelled, event.id, step, refund))


def _claim(ref: Any, order: OrderPlaced, key: str, event_id: str) -> PlacedStep:
    """Create the CHARGING claim before any money moves; if a document appeared first, decide again from it."""
    from google.api_core.exceptions import AlreadyExists

    try:
        ref.create(
            {
                "order_id": order.order_id,
                "status": PaymentStatus.CHARGING.value,
                "charge_key": key,
                "placed_event_id": event_id,
                "amount": order.total,
                "currency": order.currency,
                "gateway": gateway.name,
                "updated_at": datetime.now(UTC),
            }
        )
    except AlreadyExists:
        return on_placed(_state(ref.get()), key=key, has_token=True)
    return PlacedStep.CHARGE


def _record_charge(
    ctx: HandlerContext, ref: Any, order: OrderPlaced, event_id: str, key: str, result: ChargeResult | None
) -> None:
    """In the ledger transaction: decide again from what the transaction reads, then write and emit."""
    step = on_placed(_state(ctx.get(ref)), key=key, has_token=bool(order.payment_token))
    now = datetime.now(UTC)
    if step is PlacedStep.DECLINE_CANCELLED:
        ctx.transaction.update(ref, {"placed_event_id": event_id, "updated_at": now})
        _emit(ctx, order.order_id, PAYMENT_DECLINED, {"reason": "order_cancelled", "detail": "order was cancelled"})
    elif step is PlacedStep.DECLINE_MISSING_TOKEN:
        ctx.transaction.set(
            ref,
            {
                "order_id": order.order_id,
                "status": PaymentStatus.DECLINED.value,
                "decline_reason": "missing_token",
                "placed_event_id": event_id,
                "amount": order.total,
                "currency": order.currency,
                "updated_at": now,
            },
        )
        _emit(ctx, order.order_id, PAYMENT_DECLINED, {"reason": "missing_token", "detail": "no payment_token"})
    elif step is PlacedStep.CHARGE and result is not None and result.approved:
        ctx.transaction.update(
            ref, {"status": PaymentStatus.AUTHORIZED.value, "payment_id": result.charge_id, "updated_at": now}
        )
        _emit(
            ctx,
            order.order_id,
            PAYMENT_AUTHORIZED,
            {"payment_id": result.charge_id, "amount": order.total, "currency": order.currency},
        )
    elif step is PlacedStep.CHARGE and result is not None:
        ctx.transaction.update(
            ref, {"status": PaymentStatus.DECLINED.value, "decline_reason": result.decline_reason, "updated_at": now}
        )
        _emit(ctx, order.order_id, PAYMENT_DECLINED, {"reason": result.decline_reason, "detail": result.detail})
    elif step is not PlacedStep.NOTHING:
        # The claim appeared between our read and this transaction: decide again on the redelivery.
        raise RetryableError(f"order {order.order_id}: payment changed while charging ({step})")


def _record_cancellation(
    ctx: HandlerContext,
    ref: Any,
    cancelled: OrderCancelled,
    event_id: str,
    planned: CancelledStep,
    refund: RefundResult | None,
) -> None:
    snapshot = ctx.get(ref)
    step = on_cancelled(_state(snapshot))
    if step is not planned:
        if planned is CancelledStep.REFUND and step is CancelledStep.NOTHING:
            return  # another cancellation recorded the same refund (same refund key) first
        raise RetryableError(f"order {cancelled.order_id}: payment changed while cancelling ({planned} → {step})")
    now = datetime.now(UTC)
    if step is CancelledStep.TOMBSTONE:
        ctx.transaction.set(
            ref,
            {
                "order_id": cancelled.order_id,
                "status": PaymentStatus.CANCELLED.value,
                "reason": cancelled.reason,
                "cancel_event_id": event_id,
                "updated_at": now,
            },
        )
    elif step is CancelledStep.REFUND and refund is not None:
        payment = snapshot.to_dict()
        ctx.transaction.update(
            ref,
            {
                "status": PaymentStatus.REFUNDED.value,
                "refund_id": refund.refund_id,
                "cancel_event_id": event_id,
                "updated_at": now,
            },
        )
        _emit(
            ctx,
            cancelled.order_id,
            PAYMENT_REFUNDED,
            {"payment_id": payment["payment_id"], "amount": refund.amount, "currency": payment["currency"]},
        )


def _emit(ctx: HandlerContext, order_id: str, event_type: str, data: dict[str, Any]) -> None:
    ctx.emit(BUS, event_type, {"order_id": order_id, **data}, subject=f"orders/{order_id}")


def _state(snapshot: Any) -> PaymentState | None:
    if not snapshot.exists:
        return None
    return PaymentState(PaymentStatus(snapshot.get("status")), snapshot.to_dict().get("charge_key"))


def handle_event(request: Any) -> tuple[str, int, dict[str, str]]:
    """functions-framework target (signature type http): every delivery form goes through eventkit."""
    return consumer.handle(request)
