"""Is a posted reading acceptable? Pure checks; every problem names the field and what was expected.

A reading is ``{"device_id", "reading_id", "ts" (RFC 3339 with offset), "metrics": {"<name>": number}}``.
Problems are collected per item, so one bad reading never costs the good ones in the same batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from eventkit.catalog.telemetry import MAX_METRICS_PER_READING

MAX_BATCH_ITEMS = 500
DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
METRIC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
# RFC 3339 date-time: a full date, a full time, and an offset (Z or ±hh:mm) — nothing looser.
RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+\-]\d{2}:\d{2})$")
MAX_READING_ID_LENGTH = 128


@dataclass(frozen=True)
class Limits:
    """How far from "now" a reading's timestamp may be."""

    max_future: timedelta = timedelta(minutes=5)  # device clocks drift; more than this is a broken clock
    retention: timedelta = timedelta(hours=24)  # older readings are refused here and by the analytics


@dataclass(frozen=True)
class ValidReading:
    device_id: str
    reading_id: str
    ts: datetime
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class ItemResult:
    index: int
    status: str  # "accepted" | "duplicate" (same device and reading id earlier in the batch) | "rejected"
    device_id: str | None = None
    reading_id: str | None = None
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.device_id is not None:
            body["device_id"] = self.device_id
        if self.reading_id is not None:
            body["reading_id"] = self.reading_id
        if self.errors:
            body["errors"] = list(self.errors)
        return body


@dataclass(frozen=True)
class BatchResult:
    readings: list[ValidReading] = field(default_factory=list)
    items: list[ItemResult] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(1 for item in self.items if item.status != "rejected")

    @property
    def rejected(self) -> int:
        return sum(1 for item in self.items if item.status == "rejected")


class BodyShapeError(ValueError):
    """The body is neither a reading nor a batch of them (or the batch is empty or too long)."""


def items_of(body: Any) -> tuple[list[Any], bool]:
    """A JSON body -> (its items, whether it was a batch). One object is a batch of one."""
    if isinstance(body, dict):
        return [body], False
    if isinstance(body, list):
        if not body:
            raise BodyShapeError("the batch is empty; send one reading or a list of 1 to 500")
        if len(body) > MAX_BATCH_ITEMS:
            raise BodyShapeError(f"the batch has {len(body)} readings; at most {MAX_BATCH_ITEMS} are accepted")
        return body, True
    raise BodyShapeError(f"the body must be a reading (object) or a list of readings, got {_json_type(body)}")


def validate_batch(body: Any, now: datetime, limits: Limits) -> BatchResult:
    """Check every item; a later item with the same (device, reading id) as an earlier one is a duplicate."""
    items, is_batch = items_of(body)
    result = BatchResult()
    seen: set[tuple[str, str]] = set()
    for index, raw in enumerate(items):
        where = f"items[{index}]" if is_batch else "body"
        checked = validate_reading(raw, now, limits, where=where)
        if isinstance(checked, ValidReading):
            identity = (checked.device_id, checked.reading_id)
            status = "duplicate" if identity in seen else "accepted"
            if status == "accepted":
                seen.add(identity)
                result.readings.append(checked)
            result.items.append(ItemResult(index, status, checked.device_id, checked.reading_id))
        else:
            device_id, reading_id = _identity_hint(raw)
            result.items.append(ItemResult(index, "rejected", device_id, reading_id, tuple(checked)))
    return result


def validate_reading(raw: Any, now: datetime, limits: Limits, *, where: str = "body") -> ValidReading | list[str]:
    """One item -> a :class:`ValidReading`, or the list of everything wrong with it."""
    if not isinstance(raw, dict):
        return [f"{where}: must be an object with device_id, reading_id, ts and metrics, got {_json_type(raw)}"]
    problems: list[str] = []
    device_id = _device_id(raw, where, problems)
    reading_id = _reading_id(raw, where, problems)
    ts = _timestamp(raw, where, now, limits, problems)
    metrics = _metrics(raw, where, problems)
    if problems:
        return problems
    assert device_id is not None and reading_id is not None and ts is not None and metrics is not None
    return ValidReading(device_id, reading_id, ts, metrics)


def age_problem(ts: datetime, now: datetime, limits: Limits) -> str | None:
    """Why ``ts`` is outside [now - retention, now + max_future], or None."""
    if ts > now + limits.max_future:
        ahead = (ts - now).total_seconds()
        return f"is {ahead:.0f} s in the future; at most {limits.max_future.total_seconds():.0f} s is allowed"
    if ts < now - limits.retention:
        age = (now - ts).total_seconds()
        return (
            f"is {age:.0f} s old; readings older than the retention window "
            f"({limits.retention.total_seconds():.0f} s) are not accepted"
        )
    return None


def parse_rfc3339(text: str) -> datetime | None:
    match = RFC3339.match(text)
    if not match:
        return None
    day, clock, fraction, offset = match.groups()
    micro = f".{(fraction or '0')[:6]:0<6}"
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{day}T{clock}{micro}{offset}")
    except ValueError:
        return None  # e.g. month 13, or 25:00


def _device_id(raw: Mapping[str, Any], where: str, problems: list[str]) -> str | None:
    value = raw.get("device_id")
    if value is None:
        problems.append(f"{where}.device_id: is required")
    elif not isinstance(value, str) or not DEVICE_ID.match(value):
        problems.append(
            f"{where}.device_id: must be 1-128 letters, digits and _.:- starting with a letter or digit, "
            f"got {_shown(value)}"
        )
    else:
        return value
    return None


def _reading_id(raw: Mapping[str, Any], where: str, problems: list[str]) -> str | None:
    value = raw.get("reading_id")
    if value is None:
        problems.append(f"{where}.reading_id: is required")
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)  # devices often count; 7 and "7" name the same reading
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_READING_ID_LENGTH or not value.isprintable():
        problems.append(
            f"{where}.reading_id: must be a non-empty printable string of at most {MAX_READING_ID_LENGTH} "
            f"characters (or a non-negative integer), got {_shown(value)}"
        )
        return None
    return value


def _timestamp(
    raw: Mapping[str, Any], where: str, now: datetime, limits: Limits, problems: list[str]
) -> datetime | None:
    value = raw.get("ts")
    if value is None:
        problems.append(f"{where}.ts: is required")
        return None
    parsed = parse_rfc3339(value) if isinstance(value, str) else None
    if parsed is None:
        problems.append(f"{where}.ts: must be an RFC 3339 timestamp like 2024-05-01T12:00:00Z, got {_shown(value)}")
        return None
    problem = age_problem(parsed, now, limits)
    if problem:
        problems.append(f"{where}.ts: {problem}")
        return None
    return parsed


def _metrics(raw: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, float] | None:
    value = raw.get("metrics")
    if value is None:
        problems.append(f"{where}.metrics: is required")
        return None
    if not isinstance(value, dict) or not value:
        problems.append(f"{where}.metrics: must be a non-empty object of name -> number, got {_shown(value)}")
        return None
    if len(value) > MAX_METRICS_PER_READING:
        problems.append(f"{where}.metrics: has {len(value)} metrics; at most {MAX_METRICS_PER_READING}")
        return None
    metrics: dict[str, float] = {}
    before = len(problems)
    for name, number in value.items():
        if not METRIC_NAME.match(name):
            problems.append(
                f"{where}.metrics: name {_shown(name)} must be 1-64 letters, digits and _.- starting with a letter"
            )
            continue
        converted = _finite(number)
        if converted is None:
            problems.append(f"{where}.metrics.{name}: must be a finite number, got {_shown(number)}")
        else:
            metrics[name] = converted
    return metrics if len(problems) == before else None


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        converted = float(value)
    except OverflowError:  # an integer too large for a double
        return None
    return converted if math.isfinite(converted) else None


def _identity_hint(raw: Any) -> tuple[str | None, str | None]:
    """The device and reading id of a rejected item, when they are at least strings (for the response)."""
    if not isinstance(raw, dict):
        return None, None
    device_id, reading_id = raw.get("device_id"), raw.get("reading_id")
    return (
        device_id[:128] if isinstance(device_id, str) else None,
        reading_id[:128] if isinstance(reading_id, str) else None,
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _shown(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
