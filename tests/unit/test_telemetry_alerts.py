"""Telemetry alerts: edge-triggered thresholds, once per crossing, by event time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from telemetry.alerts import ABOVE, NORMAL, DeviceState, Threshold, advance, effective, parse_thresholds

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class R:
    reading_id: str
    ts: datetime
    metrics: dict[str, float] = field(default_factory=dict)


def series(values: list[float], metric: str = "temp", start: int = 0) -> list[R]:
    return [R(f"r{start + i}", T0 + timedelta(seconds=start + i), {metric: v}) for i, v in enumerate(values)]


HOT = {"temp": Threshold(above=30.0)}


def test_crossing_staying_over_and_returning_raises_once_and_clears_once() -> None:
    state, transitions = advance(DeviceState(), series([20, 25, 31, 35, 40, 33, 29, 20]), HOT)

    assert [(t.state, t.direction, t.value, t.reading_id) for t in transitions] == [
        ("raised", "above", 31, "r2"),
        ("cleared", "above", 29, "r6"),
    ]
    assert state.alerts == {"temp": NORMAL}


def test_state_carries_over_between_batches() -> None:
    state, first = advance(DeviceState(), series([20, 35, 36]), HOT)
    state, second = advance(state, series([37, 38], start=3), HOT)
    state, third = advance(state, series([10], start=5), HOT)

    assert [t.state for t in first + second + third] == ["raised", "cleared"]
    assert state.latest["temp"].value == 10


def test_a_late_reading_counts_as_history_and_moves_neither_latest_value_nor_alert() -> None:
    state, _ = advance(DeviceState(), series([20, 21], start=10), HOT)

    state, transitions = advance(state, series([99], start=0), HOT)  # older than what is known

    assert transitions == []
    assert state.latest["temp"].value == 21
    assert state.last_seen == T0 + timedelta(seconds=11)


def test_hysteresis_keeps_a_hovering_value_from_flapping() -> None:
    threshold = {"temp": Threshold(above=30.0, hysteresis=2.0)}

    _, transitions = advance(DeviceState(), series([31, 29.5, 30.5, 29, 27.9]), threshold)

    assert [(t.state, t.value) for t in transitions] == [("raised", 31), ("cleared", 27.9)]


def test_jumping_from_above_to_below_clears_then_raises() -> None:
    threshold = {"temp": Threshold(above=30.0, below=0.0)}

    state, transitions = advance(DeviceState(), series([35, -5]), threshold)

    assert [(t.state, t.direction) for t in transitions] == [
        ("raised", "above"),
        ("cleared", "above"),
        ("raised", "below"),
    ]
    assert state.alerts["temp"] == "below"


def test_metrics_without_a_threshold_only_update_latest_values() -> None:
    state, transitions = advance(DeviceState(alerts={"temp": ABOVE}), series([1e9], metric="humidity"), HOT)

    assert transitions == []
    assert state.latest["humidity"].value == 1e9


def test_device_thresholds_replace_global_ones_per_metric() -> None:
    merged = effective(
        parse_thresholds({"temp": {"above": 30}, "rpm": {"above": 5}}), parse_thresholds({"temp": {"below": 0}})
    )

    assert merged == {"temp": Threshold(below=0.0), "rpm": Threshold(above=5.0)}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"temp": {}}, "thresholds.temp: needs 'above' or 'below'"),
        ({"temp": {"above": "hot"}}, "thresholds.temp.above: must be a finite number"),
        ({"temp": {"above": 1, "below": 2}}, "'below' (2.0) must be less than 'above' (1.0)"),
        ({"temp": {"over": 1}}, "thresholds.temp: must be an object with"),
        ([1], "thresholds: must be an object"),
    ],
)
def test_malformed_thresholds_are_refused_naming_the_entry(raw: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_thresholds(raw)

    assert message in str(caught.value)
