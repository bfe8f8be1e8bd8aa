"""A metric's windows and alerts as an SVG chart, laid out here (pure) and drawn by a template (escaped there).

Per window: a vertical bar from its min to its max, and a point at its mean, joined by a line through the means of
consecutive windows (a gap in the data breaks the line). Per alert: a vertical mark at its time, ``raised`` or
``cleared``, and a dashed line at each threshold crossed. Axes: five values and up to seven times. Nothing is
loaded from anywhere: the numbers become coordinates, the template writes the elements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 26  # room for the value labels (left) and the times (below)


@dataclass(frozen=True)
class Window:
    start: datetime
    seconds: int
    count: int
    min: float
    mean: float
    max: float


@dataclass(frozen=True)
class Alert:
    ts: datetime
    state: str  # raised | cleared
    direction: str  # above | below
    threshold: float
    value: float


@dataclass(frozen=True)
class Point:
    x: float
    y_min: float
    y_mean: float
    y_max: float
    window: Window


@dataclass(frozen=True)
class AlertMark:
    x: float
    alert: Alert


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    metric: str
    points: tuple[Point, ...]
    paths: tuple[str, ...]  # the mean lines, one per run of consecutive windows
    alerts: tuple[AlertMark, ...]
    thresholds: tuple[Tick, ...]  # y of each threshold an alert in range crossed
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    low: float
    high: float
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM


def window_of(doc: Mapping[str, Any]) -> Window:
    return Window(
        start=_utc(doc["window_start"]),
        seconds=int(doc["window_seconds"]),
        count=int(doc["count"]),
        min=float(doc["min"]),
        mean=float(doc["mean"]),
        max=float(doc["max"]),
    )


def alert_of(doc: Mapping[str, Any]) -> Alert:
    return Alert(
        ts=_utc(doc["ts"]),
        state=str(doc["state"]),
        direction=str(doc["direction"]),
        threshold=float(doc["threshold"]),
        value=float(doc["value"]),
    )


def layout(metric: str, windows: Sequence[Window], alerts: Sequence[Alert], start: datetime, end: datetime) -> Chart:
    """The chart of ``windows`` and ``alerts`` over the time range [start, end)."""
    thresholds = sorted({a.threshold for a in alerts})
    values = [v for w in windows for v in (w.min, w.max)] + thresholds + [a.value for a in alerts]
    low, high = _value_range(values)
    span = (end - start).total_seconds() or 1.0
    plot_w, plot_h = WIDTH - RIGHT - LEFT, HEIGHT - BOTTOM - TOP

    def x(when: datetime) -> float:
        return round(LEFT + plot_w * min(max((when - start).total_seconds() / span, 0.0), 1.0), 1)

    def y(value: float) -> float:
        return round(TOP + plot_h * (1 - (value - low) / (high - low)), 1)

    ordered = sorted(windows, key=lambda w: w.start)
    points = tuple(
        Point(x(w.start + timedelta(seconds=w.seconds / 2)), y(w.min), y(w.mean), y(w.max), w) for w in ordered
    )
    paths: list[str] = []
    run: list[Point] = []
    for point in points:
        if run and point.window.start != run[-1].window.start + timedelta(seconds=run[-1].window.seconds):
            paths.append(_path(run))
            run = []
        run.append(point)
    if run:
        paths.append(_path(run))
    return Chart(
        metric=metric,
        points=points,
        paths=tuple(paths),
        alerts=tuple(AlertMark(x(a.ts), a) for a in sorted(alerts, key=lambda a: a.ts)),
        thresholds=tuple(Tick(y(t), _number(t)) for t in thresholds),
        y_ticks=tuple(Tick(y(v), _number(v)) for v in _steps(low, high, 5)),
        x_ticks=tuple(Tick(x(t), f"{t:%H:%M}") for t in _times(start, end, 7)),
        low=low,
        high=high,
    )


def _path(run: Sequence[Point]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{p.x},{p.y_mean}" for i, p in enumerate(run))


def _value_range(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if low == high:
        return low - 1, high + 1
    pad = (high - low) * 0.08
    return low - pad, high + pad


def _steps(low: float, high: float, count: int) -> list[float]:
    """Round values between low and high, at most ``count`` of them (1, 2, 2.5 or 5 times a power of ten apart)."""
    power = 10 ** math.floor(math.log10((high - low) / count))
    step = next(
        m * power
        for m in (1, 2, 2.5, 5, 10, 20, 25, 50, 100)
        if math.floor(high / (m * power)) - math.ceil(low / (m * power)) + 1 <= count
    )
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step) + 1)]


def _times(start: datetime, end: datetime, count: int) -> list[datetime]:
    """Whole minutes between start and end, at most ``count``, a round number of minutes apart."""
    minutes = max((end - start).total_seconds() / 60, 1)
    step = next((m for m in (1, 2, 5, 10, 15, 30, 60, 120, 240, 360) if minutes / m <= count - 1), 720)
    first = start.replace(second=0, microsecond=0)
    first += timedelta(minutes=(-first.minute) % step) if step <= 60 else timedelta()
    if first < start:
        first += timedelta(minutes=step)
    times = []
    while first <= end and len(times) < count:
        times.append(first)
        first += timedelta(minutes=step)
    return times


def _number(value: float) -> str:
    return f"{value:.6g}"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
