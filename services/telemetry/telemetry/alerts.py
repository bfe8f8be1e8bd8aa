"""Edge-triggered threshold alerts and each device's latest values.

Per (device, metric) the alert state is ``normal``, ``above`` or ``below``. A reading moves the state only if
it is newer than the newest reading already seen for that metric (an out-of-order reading is history: it counts
in its window but does not rewrite "now"). Crossing into ``above``/``below`` raises one alert; coming back
clears it; readings that stay on the same side change nothing — once per crossing, not once per reading. With
``hysteresis`` h, an ``above`` alert clears only at ``value <= above - h`` (and ``below`` at ``>= below + h``),
so a value hovering at the line does not flap.

Thresholds are ``{"<metric>": {"above": x, "below": y, "hysteresis": h}}`` (either bound may be absent),
set globally and per device; a device's entry for a metric replaces the global one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

NORMAL, ABOVE, BELOW = "normal", "above", "below"


@dataclass(frozen=True)
class Threshold:
    above: float | None = None
    below: float | None = None
    hysteresis: float = 0.0

    def next_state(self, state: str, value: float) -> str:
        if state == ABOVE and self.above is not None and value > self.above - self.hysteresis:
            return ABOVE
        if state == BELOW and self.below is not None and value < self.below + self.hysteresis:
            return BELOW
        if self.above is not None and value > self.above:
            return ABOVE
        if self.below is not None and value < self.below:
            return BELOW
        return NORMAL

    def bound(self, direction: str) -> float:
        value = self.above if direction == ABOVE else self.below
        assert value is not None
        return value


def parse_thresholds(raw: Any, where: str = "thresholds") -> dict[str, Threshold]:
    """``{"temp": {"above": 80}}`` -> thresholds; a malformed entry raises ValueError naming it."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be an object of metric -> {{above, below, hysteresis}}")
    thresholds: dict[str, Threshold] = {}
    for metric, spec in raw.items():
        here = f"{where}.{metric}"
        if not isinstance(spec, Mapping) or not set(spec) <= {"above", "below", "hysteresis"}:
            raise ValueError(f"{here}: must be an object with 'above', 'below' and/or 'hysteresis'")
        values = {key: _number(spec[key], f"{here}.{key}") for key in spec if spec[key] is not None}
        threshold = Threshold(values.get("above"), values.get("below"), values.get("hysteresis", 0.0))
        if threshold.above is None and threshold.below is None:
            raise ValueError(f"{here}: needs 'above' or 'below'")
        if threshold.hysteresis < 0:
            raise ValueError(f"{here}.hysteresis: must be >= 0, got {threshold.hysteresis}")
        if threshold.above is not None and threshold.below is not None and threshold.below >= threshold.above:
            raise ValueError(f"{here}: 'below' ({threshold.below}) must be less than 'above' ({threshold.above})")
        thresholds[str(metric)] = threshold
    return thresholds


def effective(*layers: Mapping[str, Threshold]) -> dict[str, Threshold]:
    """Later layers win per metric: ``effective(from_env, global_doc, device_doc)``."""
    result: dict[str, Threshold] = {}
    for layer in layers:
        result.update(layer)
    return result


@dataclass(frozen=True)
class Latest:
    value: float
    ts: datetime
    reading_id: str


@dataclass(frozen=True)
class DeviceState:
    """What the device document keeps: the latest value per metric, and the alert state per metric."""

    latest: Mapping[str, Latest] = field(default_factory=dict)
    alerts: Mapping[str, str] = field(default_factory=dict)
    last_seen: datetime | None = None


@dataclass(frozen=True)
class Transition:
    metric: str
    state: str  # "raised" | "cleared"
    direction: str  # "above" | "below"
    threshold: float
    value: float
    reading_id: str
    ts: datetime

    def data(self, device_id: str) -> dict[str, Any]:
        """The ``TelemetryAlert`` event's data."""
        return {
            "device_id": device_id,
            "metric": self.metric,
            "state": self.state,
            "direction": self.direction,
            "threshold": self.threshold,
            "value": self.value,
            "reading_id": self.reading_id,
            "ts": self.ts.isoformat(),
        }


def advance(
    state: DeviceState, readings: Iterable[Any], thresholds: Mapping[str, Threshold]
) -> tuple[DeviceState, list[Transition]]:
    """Apply new readings (anything with ``reading_id``, ``ts``, ``metrics``) in time order.

    Returns the new state and the alerts to emit, in order.
    """
    latest = dict(state.latest)
    alerts = dict(state.alerts)
    last_seen = state.last_seen
    transitions: list[Transition] = []
    for reading in sorted(readings, key=lambda r: (r.ts, r.reading_id)):
        last_seen = reading.ts if last_seen is None else max(last_seen, reading.ts)
        for metric, value in sorted(reading.metrics.items()):
            previous = latest.get(metric)
            if previous is not None and reading.ts <= previous.ts:
                continue  # older than what we know: it is history, not the present
            latest[metric] = Latest(value, reading.ts, reading.reading_id)
            threshold = thresholds.get(metric)
            if threshold is None:
                continue
            before = alerts.get(metric, NORMAL)
            after = threshold.next_state(before, value)
            if after == before:
                continue
            if before != NORMAL:
                transitions.append(
                    Transition(
                        metric, "cleared", before, threshold.bound(before), value, reading.reading_id, reading.ts
                    )
                )
            if after != NORMAL:
                transitions.append(
                    Transition(metric, "raised", after, threshold.bound(after), value, reading.reading_id, reading.ts)
                )
            alerts[metric] = after
    return replace(state, latest=latest, alerts=alerts, last_seen=last_seen), transitions


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise ValueError(f"{where}: must be a finite number, got {value!r}")
    return float(value)
