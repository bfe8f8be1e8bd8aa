"""Inventory's pure reservation decision."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services" / "inventory"))

from reservation import StockLevel, after_reservation, decide, wanted_per_sku


def test_same_sku_on_two_lines_is_reserved_as_one_sum() -> None:
    assert wanted_per_sku([("A", 2), ("B", 1), ("A", 3)]) == {"A": 5, "B": 1}


def test_all_lines_in_stock_are_reserved() -> None:
    decision = decide({"A": 2, "B": 1}, {"A": StockLevel(2), "B": StockLevel(5, 1)})

    assert decision.accepted
    assert decision.quantities == {"A": 2, "B": 1}
    assert decision.reason is None


def test_one_short_line_rejects_the_whole_order_naming_each_problem() -> None:
    decision = decide({"A": 3, "B": 1, "C": 1}, {"A": StockLevel(2), "B": StockLevel(1), "C": None})

    assert not decision.accepted
    assert decision.quantities == {}
    assert decision.reason == "A: only 2 available, 3 wanted; C: unknown SKU"


def test_reservation_moves_quantity_from_available_to_reserved() -> None:
    assert after_reservation(StockLevel(10, 1), 4) == StockLevel(6, 5)
