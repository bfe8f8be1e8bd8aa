"""An order's path, pure: the placing first, then the hops in time order with the wait before each, the longest
marked; ten-minute windows; waits as an operator reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from console.order_path import PLACED, duration, order_path, traces_of
from eventkit.delivery_note import window_of
from eventkit.processed import Hop

T0 = datetime(2026, 12, 6, 9, 0, 0, tzinfo=UTC)


def _hop(consumer: str, event_type: str, seconds: float | None, trace: str = "a" * 32) -> Hop:
    at = T0 + timedelta(seconds=seconds) if seconds is not None else None
    return Hop(consumer, event_type, at, trace, None)


def test_the_path_starts_with_the_placing_and_gives_each_hop_its_wait() -> None:
    order = {"created_at": T0, "trace_id": "a" * 32}
    hops = [_hop("inventory", PLACED, 0.2), _hop("order-saga", "x.reserved", 0.5), _hop("notifications", "y", 3.5)]

    steps = order_path(order, hops)

    assert [(s.service, s.event_type) for s in steps] == [
        ("orders", PLACED),
        ("inventory", PLACED),
        ("order-saga", "x.reserved"),
        ("notifications", "y"),
    ]
    assert [s.after for s in steps] == [None, timedelta(seconds=0.2), timedelta(seconds=0.3), timedelta(seconds=3)]
    assert [s.longest for s in steps] == [False, False, False, True]
    assert traces_of(steps) == ["a" * 32]


def test_a_hop_under_way_has_no_time_and_no_wait_and_one_wait_is_not_called_the_longest() -> None:
    steps = order_path({"created_at": T0}, [_hop("payments", PLACED, 1.0), _hop("notifications", "y", None)])

    assert [(s.at, s.after) for s in steps[1:]] == [(T0 + timedelta(seconds=1), timedelta(seconds=1)), (None, None)]
    assert not any(s.longest for s in steps)


def test_a_flow_that_changed_trace_shows_both_traces_in_order() -> None:
    steps = order_path({"created_at": T0, "trace_id": "a" * 32}, [_hop("inventory", PLACED, 1, trace="b" * 32)])

    assert traces_of(steps) == ["a" * 32, "b" * 32]


def test_windows_are_ten_minutes_in_utc() -> None:
    assert window_of(datetime(2026, 12, 6, 9, 59, 59, 999, tzinfo=UTC)) == datetime(2026, 12, 6, 9, 50, tzinfo=UTC)
    assert window_of(datetime(2026, 12, 6, 10, 0, tzinfo=UTC)) == datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    local = datetime(2026, 12, 6, 11, 7, tzinfo=UTC).astimezone(ZoneInfo("Asia/Kolkata"))
    assert window_of(local) == datetime(2026, 12, 6, 11, 0, tzinfo=UTC)


def test_waits_read_as_milliseconds_seconds_minutes_and_hours() -> None:
    assert [duration(timedelta(seconds=s)) for s in (0.085, 2.44, 185, 7500)] == [
        "+85 ms",
        "+2.4 s",
        "+3 min 5 s",
        "+2 h 5 min",
    ]
    assert duration(None) == "—"
