"""Where telemetry lives in Firestore, and how documents map to the domain's values.

- ``telemetry-devices/{device}``: latest value per metric, alert state per metric, ``last_seen``;
  written once per event.
- ``telemetry-devices/{device}/metrics/{metric}/windows/{start}-{size}s``: count, min, max, sum (with its exact
  partials), mean; written once per event per window the event touches.
- ``telemetry-devices/{device}/alerts/{id}``: one document per alert raised or cleared (the ``TelemetryAlert``
  event's data, ``ts`` a time), written in the same transaction as the event is staged: the history the console's
  chart marks (the device document holds only the current state).
- ``idempotency/telemetry-analytics.readings:{key}``: the ledger entry of one reading ``(device, reading id)``;
  written once per new reading (a different document for every reading: never hot).
- ``telemetry-thresholds/_global`` and ``telemetry-thresholds/{device}``:
  ``{"metrics": {"<metric>": {"above", "below", "hysteresis"}}}``, written by an operator.

Windows sit under their metric, so a stats query is a range on one field (``window_start``) and needs no
composite index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from telemetry.alerts import DeviceState, Latest, Transition
from telemetry.windows import WindowKey, WindowStats, window_id

DEVICES = "telemetry-devices"
METRICS = "metrics"
WINDOWS = "windows"
ALERTS = "alerts"
THRESHOLDS = "telemetry-thresholds"
GLOBAL_THRESHOLDS = "_global"
# Ledger scope of the per-reading entries (the event-level entries are scoped "telemetry-analytics").
READINGS_SCOPE = "telemetry-analytics.readings"


def device_ref(db: Any, device_id: str) -> Any:
    return db.collection(DEVICES).document(device_id)


def window_ref(db: Any, device_id: str, key: WindowKey, size_seconds: int) -> Any:
    return (
        device_ref(db, device_id)
        .collection(METRICS)
        .document(key.metric)
        .collection(WINDOWS)
        .document(window_id(key.start, size_seconds))
    )


def alert_ref(db: Any, device_id: str, transition: Transition) -> Any:
    """One alert's document: its id from what makes it one crossing (a redelivery writes the same document)."""
    key = f"{transition.metric}\0{transition.reading_id}\0{transition.state}"
    return device_ref(db, device_id).collection(ALERTS).document(hashlib.sha256(key.encode()).hexdigest()[:32])


def alert_fields(device_id: str, transition: Transition, now: datetime) -> dict[str, Any]:
    return {**transition.data(device_id), "ts": transition.ts, "recorded_at": now}


def reading_identity(reading: Any) -> dict[str, Any]:
    """What a reading's ledger entry compares: the same reading id with other values is a producer bug."""
    return {"ts": reading.ts.isoformat(), "metrics": dict(reading.metrics)}


def threshold_refs(db: Any, device_id: str) -> list[Any]:
    return [db.collection(THRESHOLDS).document(GLOBAL_THRESHOLDS), db.collection(THRESHOLDS).document(device_id)]


def device_state(doc: Mapping[str, Any] | None) -> DeviceState:
    if not doc:
        return DeviceState()
    latest = {
        metric: Latest(float(entry["value"]), _utc(entry["ts"]), str(entry["reading_id"]))
        for metric, entry in (doc.get("latest") or {}).items()
    }
    last_seen = doc.get("last_seen")
    return DeviceState(
        latest=latest,
        alerts=dict(doc.get("alerts") or {}),
        last_seen=_utc(last_seen) if last_seen else None,
    )


def device_fields(device_id: str, state: DeviceState, now: datetime) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "latest": {
            metric: {"value": latest.value, "ts": latest.ts, "reading_id": latest.reading_id}
            for metric, latest in state.latest.items()
        },
        "alerts": dict(state.alerts),
        "last_seen": state.last_seen,
        "updated_at": now,
    }


def window_fields(
    device_id: str, key: WindowKey, size_seconds: int, stats: WindowStats, now: datetime
) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "metric": key.metric,
        "window_start": key.start,
        "window_end": key.start + timedelta(seconds=size_seconds),
        "window_seconds": size_seconds,
        **stats.to_fields(),
        "updated_at": now,
    }


def window_json(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A window document as the stats API shows it."""
    return {
        "metric": doc["metric"],
        "start": _iso(doc["window_start"]),
        "end": _iso(doc["window_end"]),
        "window_seconds": doc["window_seconds"],
        "count": doc["count"],
        "min": doc["min"],
        "max": doc["max"],
        "sum": doc["sum"],
        "mean": doc["mean"],
    }


def device_json(doc: Mapping[str, Any] | None) -> dict[str, Any]:
    state = device_state(doc)
    return {
        "last_seen": _iso(state.last_seen) if state.last_seen else None,
        "latest": {
            metric: {"value": latest.value, "ts": _iso(latest.ts), "reading_id": latest.reading_id}
            for metric, latest in sorted(state.latest.items())
        },
        "alerts": dict(sorted(state.alerts.items())),
    }


def query_windows(
    db: Any, device_id: str, metrics: list[str], start: datetime, end: datetime, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Windows starting in [start, end) for the given metrics, oldest first; and whether ``limit`` cut them."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    found: list[dict[str, Any]] = []
    for metric in metrics:
        query = (
            device_ref(db, device_id)
            .collection(METRICS)
            .document(metric)
            .collection(WINDOWS)
            .where(filter=FieldFilter("window_start", ">=", start))
            .where(filter=FieldFilter("window_start", "<", end))
            .order_by("window_start")
            .limit(limit + 1 - len(found))
        )
        found.extend(window_json(snapshot.to_dict()) for snapshot in query.stream())
        if len(found) > limit:
            return found[:limit], True
    return found, False


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return _utc(value).isoformat().replace("+00:00", "Z")
