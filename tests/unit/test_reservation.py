"""Inventory's pure decisions: reserve all or nothing, release once, tombstone a cancel that came first."""

from __future__ import annotations

from inventory.reservation import (
    CancelledAction,
    PlacedAction,
    ReservationStatus,
    StockLevel,
    after_release,
    after_reservation,
    decide,
    on_cancelled,
    on_placed,
    wanted_per_sku,
)


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


def test_rejection_names_unknown_skus_before_shortages() -> None:
    decision = decide({"A": 3, "C": 1}, {"A": StockLevel(2), "C": None})

    assert decision.rejection == "unknown_sku"
    assert decision.rejected_skus == ["C"]


def test_rejection_for_shortages_names_every_short_sku() -> None:
    decision = decide({"B": 2, "A": 3, "D": 1}, {"A": StockLevel(2), "B": StockLevel(1), "D": StockLevel(1)})

    assert decision.rejection == "out_of_stock"
    assert decision.rejected_skus == ["A", "B"]


def test_accepted_reservation_has_no_rejection() -> None:
    decision = decide({"A": 1}, {"A": StockLevel(1)})

    assert decision.rejection is None
    assert decision.rejected_skus == []


def test_first_order_placed_decides_later_ones_change_nothing() -> None:
    assert on_placed(None) is PlacedAction.DECIDE
    for status in (ReservationStatus.RESERVED, ReservationStatus.REJECTED, ReservationStatus.RELEASED):
        assert on_placed(status) is PlacedAction.NOTHING


def test_order_placed_after_the_cancellation_reserves_nothing() -> None:
    assert on_placed(ReservationStatus.CANCELLED) is PlacedAction.REJECT_CANCELLED


def test_cancellation_releases_a_reservation_once() -> None:
    assert on_cancelled(ReservationStatus.RESERVED) is CancelledAction.RELEASE
    assert on_cancelled(ReservationStatus.RELEASED) is CancelledAction.NOTHING


def test_cancellation_before_the_order_was_placed_leaves_a_tombstone() -> None:
    assert on_cancelled(None) is CancelledAction.TOMBSTONE
    assert on_cancelled(ReservationStatus.CANCELLED) is CancelledAction.NOTHING


def test_cancellation_of_a_rejected_order_releases_nothing() -> None:
    assert on_cancelled(ReservationStatus.REJECTED) is CancelledAction.NOTHING


def test_release_moves_quantity_back_to_available() -> None:
    assert after_release(StockLevel(6, 5), 4) == StockLevel(10, 1)


def test_release_never_leaves_reserved_negative() -> None:
    assert after_release(StockLevel(0, 1), 3) == StockLevel(3, 0)


def test_confirmation_sells_a_reservation_once_and_keeps_the_total() -> None:
    from inventory.reservation import ReservationStatus, after_sale, on_confirmed

    assert on_confirmed(ReservationStatus.RESERVED) is True
    assert on_confirmed(ReservationStatus.SOLD) is False
    assert on_confirmed(ReservationStatus.RELEASED) is False
    assert on_confirmed(None) is False
    reserved, sold = after_sale(reserved=5, sold=2, quantity=3)
    assert (reserved, sold) == (2, 5)
    assert reserved + sold == 5 + 2
