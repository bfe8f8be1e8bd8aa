"""Order saga events: orders, inventory and payments talk through these on the ``order-events`` bus."""

# No `from __future__ import annotations` here: pydantic would then evaluate every field annotation from its
# string at class creation, at import (docs/performance.md); the catalog's types need no postponement.

from typing import Literal

from pydantic import Field

from eventkit.catalog._base import Amount, Currency, Email, OrderId, Payload, Sku

ORDER_PLACED = "shop.order.placed.v1"
ORDER_CONFIRMED = "shop.order.confirmed.v1"
ORDER_CANCELLED = "shop.order.cancelled.v1"
INVENTORY_RESERVED = "shop.inventory.reserved.v1"
INVENTORY_REJECTED = "shop.inventory.rejected.v1"
INVENTORY_RELEASED = "shop.inventory.released.v1"
PAYMENT_AUTHORIZED = "shop.payment.authorized.v1"
PAYMENT_DECLINED = "shop.payment.declined.v1"
PAYMENT_REFUNDED = "shop.payment.refunded.v1"


class OrderLine(Payload):
    sku: Sku
    quantity: int = Field(ge=1, le=1000)
    unit_price: Amount


class StockLine(Payload):
    sku: Sku
    quantity: int = Field(ge=1)


class OrderPlaced(Payload):
    order_id: OrderId
    customer_id: str = Field(min_length=1, max_length=128)
    items: list[OrderLine] = Field(min_length=1, max_length=100)
    total: Amount
    currency: Currency
    # Optional for compatibility with v1 producers that predate them; the orders API always sets both.
    email: Email | None = None
    payment_token: str | None = Field(default=None, max_length=256)


class OrderConfirmed(Payload):
    order_id: OrderId
    customer_id: str
    email: Email | None = None
    total: Amount
    currency: Currency


class OrderCancelled(Payload):
    order_id: OrderId
    customer_id: str
    email: Email | None = None
    total: Amount
    currency: Currency
    reason: str = Field(min_length=1, max_length=500)


class InventoryReserved(Payload):
    order_id: OrderId
    items: list[StockLine] = Field(min_length=1)


class InventoryRejected(Payload):
    order_id: OrderId
    reason: Literal["out_of_stock", "unknown_sku", "order_cancelled"]
    skus: list[Sku] = Field(default_factory=list)
    detail: str = ""


class InventoryReleased(Payload):
    order_id: OrderId
    items: list[StockLine] = Field(min_length=1)


class PaymentAuthorized(Payload):
    order_id: OrderId
    payment_id: str = Field(min_length=1)
    amount: Amount
    currency: Currency


class PaymentDeclined(Payload):
    order_id: OrderId
    reason: Literal["declined", "limit_exceeded", "missing_token", "order_cancelled"]
    detail: str = ""


class PaymentRefunded(Payload):
    order_id: OrderId
    payment_id: str = Field(min_length=1)
    amount: Amount
    currency: Currency


MODELS: dict[str, type[Payload]] = {
    ORDER_PLACED: OrderPlaced,
    ORDER_CONFIRMED: OrderConfirmed,
    ORDER_CANCELLED: OrderCancelled,
    INVENTORY_RESERVED: InventoryReserved,
    INVENTORY_REJECTED: InventoryRejected,
    INVENTORY_RELEASED: InventoryReleased,
    PAYMENT_AUTHORIZED: PaymentAuthorized,
    PAYMENT_DECLINED: PaymentDeclined,
    PAYMENT_REFUNDED: PaymentRefunded,
}
