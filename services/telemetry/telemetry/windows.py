"""Window math and exact per-window statistics (count, min, max, sum, mean).

A reading falls in the window ``[floor(ts / size) * size, + size)`` by its own timestamp, so a late or
out-of-order reading lands in the window it belongs to, never in "the current one".

The sum is exact: it is kept as Shewchuk partials (non-overlapping doubles whose exact sum is the exact sum of
every value added), and ``sum`` is their correctly rounded total — the same value ``math.fsum`` gives over all
the window's values, whatever order or batches they arrived in. Plain float addition (or a Firestore
``Increment`` of a double) would depend on arrival order in the last bits; count, min and max are exact
anyway.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HasMetrics(Protocol):
    @property
    def ts(self) -> datetime: ...

    @property
    def metrics(self) -> Mapping[str, float]: ...


def window_start(ts: datetime, size_seconds: int) -> datetime:
    """The start of the window ``ts`` falls in (UTC), for windows aligned on the Unix epoch."""
    elapsed = ts.astimezone(UTC) - EPOCH
    whole = elapsed // timedelta(seconds=size_seconds)
    return EPOCH + whole * timedelta(seconds=size_seconds)


def window_id(start: datetime, size_seconds: int) -> str:
    """Document id of a window: its start and its size (windows of another size never share a document)."""
    return f"{start.astimezone(UTC):%Y%m%dT%H%M%SZ}-{size_seconds}s"


def add_exact(partials: Iterable[float], value: float) -> list[float]:
    """Shewchuk's exact addition: partials (increasing magnitude, non-overlapping) plus ``value``."""
    result: list[float] = []
    x = value
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        high = x + y
        low = y - (high - x)
        if low:
            result.append(low)
        x = high
    result.append(x)
    return result


@dataclass(frozen=True)
class WindowStats:
    count: int
    min: float
    max: float
    partials: tuple[float, ...]

    @classmethod
    def of(cls, value: float) -> WindowStats:
        return cls(1, value, value, (value,))

    @property
    def sum(self) -> float:
        return math.fsum(self.partials)

    @property
    def mean(self) -> float:
        return self.sum / self.count

    def add(self, value: float) -> WindowStats:
        return WindowStats(
            self.count + 1, min(self.min, value), max(self.max, value), tuple(add_exact(self.partials, value))
        )

    def merge(self, other: WindowStats) -> WindowStats:
        partials = list(self.partials)
        for value in other.partials:
            partials = add_exact(partials, value)
        return WindowStats(
            self.count + other.count, min(self.min, other.min), max(self.max, other.max), tuple(partials)
        )

    def to_fields(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "sum": self.sum,
            "mean": self.mean,
            "sum_partials": list(self.partials),
        }

    @classmethod
    def from_fields(cls, doc: Mapping[str, Any]) -> WindowStats:
        partials = doc.get("sum_partials")
        if partials is None:
            partials = [doc["sum"]]
        return cls(int(doc["count"]), float(doc["min"]), float(doc["max"]), tuple(float(p) for p in partials))


@dataclass(frozen=True, order=True)
class WindowKey:
    metric: str
    start: datetime


def aggregate(readings: Iterable[HasMetrics], size_seconds: int) -> dict[WindowKey, WindowStats]:
    """A batch of readings -> one :class:`WindowStats` per (metric, window) it touches."""
    windows: dict[WindowKey, WindowStats] = {}
    for reading in readings:
        start = window_start(reading.ts, size_seconds)
        for metric, value in reading.metrics.items():
            key = WindowKey(metric, start)
            current = windows.get(key)
            windows[key] = WindowStats.of(value) if current is None else current.add(value)
    return windows


def merged(existing: Mapping[str, Any] | None, batch: WindowStats) -> WindowStats:
    """What a window document holds after adding a batch to what it held."""
    return batch if existing is None else WindowStats.from_fields(existing).merge(batch)
