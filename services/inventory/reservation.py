"""Inventory's decision, pure: can every line of an order be reserved from the stock levels read?

No I/O here: ``main.py`` reads the stock inside the ledger transaction, asks :func:`decide`, and writes what
it says. All lines are reserved or none is (an order never holds part of its stock).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StockLevel:
    available: int
    reserved: int = 0


@dataclass(frozen=True)
class Reservation:
    accepted: bool
    # sku -> quantity to move from available to reserved (empty when rejected)
    quantities: Mapping[str, int] = field(default_factory=dict)
    # sku -> why it could not be reserved (empty when accepted)
    problems: Mapping[str, str] = field(default_factory=dict)

    @property
    def reason(self) -> str | None:
        if self.accepted:
            return None
        return "; ".join(f"{sku}: {why}" for sku, why in sorted(self.problems.items()))


def wanted_per_sku(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The same SKU on two lines is one reservation of their sum."""
    totals: Counter[str] = Counter()
    for sku, quantity in lines:
        totals[sku] += quantity
    return dict(totals)


def decide(wanted: Mapping[str, int], stock: Mapping[str, StockLevel | None]) -> Reservation:
    problems: dict[str, str] = {}
    for sku, quantity in wanted.items():
        level = stock.get(sku)
        if level is None:
            problems[sku] = "unknown SKU"
        elif level.available < quantity:
            problems[sku] = f"only {level.available} available, {quantity} wanted"
    if problems:
        return Reservation(accepted=False, problems=problems)
    return Reservation(accepted=True, quantities=dict(wanted))


def after_reservation(level: StockLevel, quantity: int) -> StockLevel:
    return StockLevel(available=level.available - quantity, reserved=level.reserved + quantity)
