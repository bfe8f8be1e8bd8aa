"""Inventory's decisions, pure: can every line of an order be reserved, and what does a cancellation undo?

No I/O here: ``main.py`` reads the stock and the order's reservation inside the ledger transaction, asks
:func:`decide` / :func:`on_placed` / :func:`on_cancelled`, and writes what they say. All lines are reserved or
none is (an order never holds part of its stock).

A reservation document (``reservations/<order_id>``) moves through::

    (none) --OrderPlaced--> RESERVED --OrderCancelled--> RELEASED
    (none) --OrderPlaced--> REJECTED                      (cancel: nothing to release)
    (none) --OrderCancelled--> CANCELLED (tombstone) --late OrderPlaced--> stays CANCELLED, reserves nothing

A late ``OrderPlaced`` that meets the tombstone is answered with ``InventoryRejected(order_cancelled)``, so every
order the saga hears of gets exactly one inventory answer; the saga, already CANCELLED, ignores it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class StockLevel:
    available: int
    reserved: int = 0


class ReservationStatus(StrEnum):
    RESERVED = "RESERVED"
    REJECTED = "REJECTED"
    RELEASED = "RELEASED"
    SOLD = "SOLD"  # the order was confirmed: the reserved stock is sold
    CANCELLED = "CANCELLED"  # tombstone: the order was cancelled before its OrderPlaced was processed


class PlacedAction(StrEnum):
    DECIDE = "decide"  # first word on this order: reserve all lines or reject
    REJECT_CANCELLED = "reject_cancelled"  # the tombstone is there: reserve nothing, say so
    NOTHING = "nothing"  # already decided (the same order under another event id)


class CancelledAction(StrEnum):
    RELEASE = "release"  # give the reserved stock back
    TOMBSTONE = "tombstone"  # nothing reserved yet: make sure a late OrderPlaced reserves nothing
    NOTHING = "nothing"  # rejected, already released, or already cancelled


# Rejection reasons, as in the InventoryRejected event; unknown SKUs win over shortages (nothing to wait for).
REASON_UNKNOWN_SKU = "unknown_sku"
REASON_OUT_OF_STOCK = "out_of_stock"
REASON_ORDER_CANCELLED = "order_cancelled"


@dataclass(frozen=True)
class Reservation:
    accepted: bool
    # sku -> quantity to move from available to reserved (empty when rejected)
    quantities: Mapping[str, int] = field(default_factory=dict)
    # sku -> why it could not be reserved (empty when accepted)
    problems: Mapping[str, str] = field(default_factory=dict)
    # sku -> REASON_UNKNOWN_SKU | REASON_OUT_OF_STOCK (empty when accepted)
    kinds: Mapping[str, str] = field(default_factory=dict)

    @property
    def reason(self) -> str | None:
        if self.accepted:
            return None
        return "; ".join(f"{sku}: {why}" for sku, why in sorted(self.problems.items()))

    @property
    def rejection(self) -> str | None:
        """The event's reason code: ``unknown_sku`` if any SKU is unknown, else ``out_of_stock``."""
        if self.accepted:
            return None
        return REASON_UNKNOWN_SKU if REASON_UNKNOWN_SKU in self.kinds.values() else REASON_OUT_OF_STOCK

    @property
    def rejected_skus(self) -> list[str]:
        """The SKUs behind :attr:`rejection`, sorted."""
        return sorted(sku for sku, kind in self.kinds.items() if kind == self.rejection)


def wanted_per_sku(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The same SKU on two lines is one reservation of their sum."""
    totals: Counter[str] = Counter()
    for sku, quantity in lines:
        totals[sku] += quantity
    return dict(totals)


def decide(wanted: Mapping[str, int], stock: Mapping[str, StockLevel | None]) -> Reservation:
    problems: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for sku, quantity in wanted.items():
        level = stock.get(sku)
        if level is None:
            problems[sku], kinds[sku] = "unknown SKU", REASON_UNKNOWN_SKU
        elif level.available < quantity:
            problems[sku] = f"only {level.available} available, {quantity} wanted"
            kinds[sku] = REASON_OUT_OF_STOCK
    if problems:
        return Reservation(accepted=False, problems=problems, kinds=kinds)
    return Reservation(accepted=True, quantities=dict(wanted))


def on_placed(status: ReservationStatus | None) -> PlacedAction:
    """What an ``OrderPlaced`` does, given the order's reservation status (``None``: no document yet)."""
    if status is None:
        return PlacedAction.DECIDE
    if status is ReservationStatus.CANCELLED:
        return PlacedAction.REJECT_CANCELLED
    return PlacedAction.NOTHING


def on_cancelled(status: ReservationStatus | None) -> CancelledAction:
    """What an ``OrderCancelled`` does, given the order's reservation status (``None``: no document yet)."""
    if status is None:
        return CancelledAction.TOMBSTONE
    if status is ReservationStatus.RESERVED:
        return CancelledAction.RELEASE
    return CancelledAction.NOTHING


def on_confirmed(status: ReservationStatus | None) -> bool:
    """Whether an ``OrderConfirmed`` sells the reservation (only a RESERVED one, once)."""
    return status is ReservationStatus.RESERVED


def after_sale(reserved: int, sold: int, quantity: int) -> tuple[int, int]:
    """Reserved stock becomes sold: ``available + reserved + sold`` stays what it was."""
    return max(0, reserved - quantity), sold + quantity


def after_reservation(level: StockLevel, quantity: int) -> StockLevel:
    return StockLevel(available=level.available - quantity, reserved=level.reserved + quantity)


def after_release(level: StockLevel, quantity: int) -> StockLevel:
    """Reserved stock goes back to available. ``reserved`` never goes below zero, even if an operator edited
    the product in between; what could not come out of ``reserved`` still returns to ``available``."""
    return StockLevel(available=level.available + quantity, reserved=max(0, level.reserved - quantity))
