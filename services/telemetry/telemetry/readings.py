"""The identity of a reading, and of the events that carry readings from ingest to analytics.

A reading is identified by ``(device_id, reading_id)``: a device that sends the same reading twice (a retry,
a duplicate) must count once. Ingest groups a request's valid readings per device into events of at most
``MAX_READINGS_PER_EVENT``; each event's id is derived from the device and the reading ids it carries, so a
device retrying the same request produces the same events, which the consumer's ledger skips whole. Readings
repeated in a *different* batch are caught by the per-reading entries (:func:`reading_key`).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from eventkit.catalog.telemetry import MAX_READINGS_PER_EVENT
from telemetry.validation import ValidReading

_READING_NAMESPACE = uuid.UUID("3a0f6c52-9b7e-4d0c-8f0e-5b1d2f6f7a41")
_EVENT_NAMESPACE = uuid.UUID("9d4b8e1e-2c3f-4a57-b6a8-0e7c1d2f3b54")


def reading_key(device_id: str, reading_id: str) -> str:
    """The idempotency key of one reading: stable, and the same whichever batch the reading came in."""
    return str(uuid.uuid5(_READING_NAMESPACE, json.dumps([device_id, reading_id])))


def event_id(device_id: str, reading_ids: Iterable[str]) -> str:
    """The CloudEvent id of an event carrying these readings (order does not matter)."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, json.dumps([device_id, *sorted(reading_ids)])))


@dataclass(frozen=True)
class ReadingsEvent:
    device_id: str
    event_id: str
    readings: tuple[ValidReading, ...]

    def data(self) -> dict[str, Any]:
        """The event's data, in the catalog's ``TelemetryReadings`` shape."""
        return {
            "device_id": self.device_id,
            "readings": [
                {"reading_id": r.reading_id, "ts": r.ts.isoformat(), "metrics": dict(r.metrics)} for r in self.readings
            ],
        }


def events_per_device(
    readings: Iterable[ValidReading], max_per_event: int = MAX_READINGS_PER_EVENT
) -> Iterator[ReadingsEvent]:
    """Group readings by device, in chunks sorted by reading id (so a retried request chunks the same way)."""
    per_device: dict[str, dict[str, ValidReading]] = defaultdict(dict)
    for reading in readings:
        per_device[reading.device_id].setdefault(reading.reading_id, reading)
    for device_id in sorted(per_device):
        ordered = [per_device[device_id][rid] for rid in sorted(per_device[device_id])]
        for start in range(0, len(ordered), max_per_event):
            chunk = tuple(ordered[start : start + max_per_event])
            yield ReadingsEvent(device_id, event_id(device_id, (r.reading_id for r in chunk)), chunk)
