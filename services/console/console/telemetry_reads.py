"""What the console reads of the telemetry analytics' Firestore documents (services/telemetry/telemetry/store.py;
a unit test keeps the names equal): the devices, and per device and metric its windows and its alerts in a time
range — each a range on one field, so no composite index."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from console.telemetry_chart import Alert, Window, alert_of, window_of

DEVICES = "telemetry-devices"
METRICS = "metrics"
WINDOWS = "windows"
ALERTS = "alerts"
MAX_DEVICES = 200
MAX_WINDOWS = 1500  # a day of one-minute windows, and some


@dataclass(frozen=True)
class Device:
    id: str
    last_seen: datetime | None
    latest: Mapping[str, float] = field(default_factory=dict)
    alerts: Mapping[str, str] = field(default_factory=dict)  # metric -> normal | above | below

    @property
    def alerting(self) -> list[str]:
        return sorted(metric for metric, state in self.alerts.items() if state != "normal")


def device_of(device_id: str, doc: Mapping[str, Any] | None) -> Device:
    doc = doc or {}
    latest = {metric: float(entry["value"]) for metric, entry in (doc.get("latest") or {}).items()}
    last_seen = doc.get("last_seen")
    return Device(
        id=device_id,
        last_seen=last_seen.astimezone(UTC) if isinstance(last_seen, datetime) else None,
        latest=dict(sorted(latest.items())),
        alerts=dict(doc.get("alerts") or {}),
    )


def devices(db: Any) -> list[Device]:
    """The devices heard from most recently first (at most ``MAX_DEVICES``)."""
    from google.cloud.firestore import Query

    query = db.collection(DEVICES).order_by("last_seen", direction=Query.DESCENDING).limit(MAX_DEVICES)
    return [device_of(s.id, s.to_dict()) for s in query.stream()]


def device(db: Any, device_id: str) -> Device | None:
    snapshot = db.collection(DEVICES).document(device_id).get()
    return device_of(device_id, snapshot.to_dict()) if snapshot.exists else None


def windows(db: Any, device_id: str, metric: str, start: datetime, end: datetime) -> list[Window]:
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        _metric(db, device_id, metric)
        .collection(WINDOWS)
        .where(filter=FieldFilter("window_start", ">=", start))
        .where(filter=FieldFilter("window_start", "<", end))
        .order_by("window_start")
        .limit(MAX_WINDOWS)
    )
    return [window_of(s.to_dict()) for s in query.stream()]


def alerts(db: Any, device_id: str, start: datetime, end: datetime) -> dict[str, list[Alert]]:
    """The device's alerts in [start, end), per metric."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        db.collection(DEVICES)
        .document(device_id)
        .collection(ALERTS)
        .where(filter=FieldFilter("ts", ">=", start))
        .where(filter=FieldFilter("ts", "<", end))
        .order_by("ts")
    )
    found: dict[str, list[Alert]] = {}
    for snapshot in query.stream():
        doc = snapshot.to_dict()
        found.setdefault(str(doc["metric"]), []).append(alert_of(doc))
    return found


def _metric(db: Any, device_id: str, metric: str) -> Any:
    return db.collection(DEVICES).document(device_id).collection(METRICS).document(metric)
