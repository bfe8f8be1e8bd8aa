"""Telemetry windows: readings land in the window of their own timestamp; statistics are exact."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from telemetry.windows import WindowKey, WindowStats, add_exact, aggregate, merged, window_id, window_start


@dataclass(frozen=True)
class R:
    ts: datetime
    metrics: Mapping[str, float]


def at(minute: int, second: int = 0) -> datetime:
    return datetime(2024, 5, 1, 12, minute, second, tzinfo=UTC)


def test_a_window_starts_on_a_multiple_of_its_size() -> None:
    assert window_start(at(7, 59), 60) == at(7)
    assert window_start(at(7, 59), 300) == at(5)
    assert window_start(datetime(2024, 5, 1, 14, 7, 59, tzinfo=datetime.now(UTC).astimezone().tzinfo), 60).tzinfo == UTC
    assert window_id(at(7), 60) == "20240501T120700Z-60s"


def test_out_of_order_readings_each_land_in_their_own_window() -> None:
    batch = [R(at(3, 10), {"t": 3.0}), R(at(1, 5), {"t": 1.0}), R(at(3, 50), {"t": 5.0}), R(at(1, 59), {"t": 2.0})]

    windows = aggregate(batch, 60)

    assert set(windows) == {WindowKey("t", at(1)), WindowKey("t", at(3))}
    first, third = windows[WindowKey("t", at(1))], windows[WindowKey("t", at(3))]
    assert (first.count, first.min, first.max, first.sum, first.mean) == (2, 1.0, 2.0, 3.0, 1.5)
    assert (third.count, third.min, third.max, third.sum, third.mean) == (2, 3.0, 5.0, 8.0, 4.0)


def test_merging_a_batch_into_a_stored_window_keeps_every_statistic() -> None:
    stored = WindowStats.of(4.0).add(-1.0).to_fields()

    after = merged(stored, WindowStats.of(10.0))

    assert (after.count, after.min, after.max, after.sum, after.mean) == (3, -1.0, 10.0, 13.0, 13.0 / 3)


def test_float_sums_that_plain_addition_gets_wrong_are_exact() -> None:
    values = [1e16, 1.0, -1e16, 0.1, 0.2, 0.3]
    stats = WindowStats.of(values[0])
    for value in values[1:]:
        stats = stats.add(value)

    plain = 0.0
    for value in values:  # left-to-right float addition; not sum(), which compensates since Python 3.12
        plain += value
    assert plain != math.fsum(values)  # the trap
    assert stats.sum == math.fsum(values)


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@given(st.lists(finite, min_size=1, max_size=60), st.integers(min_value=1, max_value=5), st.randoms())
def test_sum_is_the_same_whatever_the_order_and_batching(values: list[float], batches: int, rnd: random.Random) -> None:
    shuffled = list(values)
    rnd.shuffle(shuffled)
    stored: dict[str, object] | None = None
    size = max(1, len(shuffled) // batches)
    for start in range(0, len(shuffled), size):
        batch = aggregate([R(at(0), {"m": v}) for v in shuffled[start : start + size]], 60)[WindowKey("m", at(0))]
        stored = merged(stored, batch).to_fields()

    assert stored is not None
    assert stored["count"] == len(values)
    assert stored["sum"] == math.fsum(values)
    assert stored["mean"] == math.fsum(values) / len(values)
    assert (stored["min"], stored["max"]) == (min(values), max(values))


def test_exact_addition_keeps_the_partials_that_carry_the_lost_bits() -> None:
    partials = add_exact([1e16], 1.0)

    assert partials == [1.0, 1e16]
    assert math.fsum(partials) == 1e16 + 1
