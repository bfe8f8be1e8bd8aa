"""Telemetry events: device readings on the ``telemetry`` topic, threshold alerts on ``telemetry-alerts``.

The ingest service publishes one ``TelemetryReadings`` event per device per request (at most
``MAX_READINGS_PER_EVENT`` readings), ordering key = device id. Its CloudEvent id is derived from the device id
and the reading ids it carries, so a device that retries a request produces the same event; readings that come
again inside a *different* batch are deduplicated by the analytics consumer per ``(device_id, reading_id)``.
"""

# No `from __future__ import annotations` here: pydantic would then evaluate every field annotation from its
# string at class creation, at import (docs/performance.md); the catalog's types need no postponement.

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from eventkit.catalog._base import Payload

TELEMETRY_READINGS = "shop.telemetry.readings.v1"
TELEMETRY_ALERT = "shop.telemetry.alert.v1"

MAX_READINGS_PER_EVENT = 100
MAX_METRICS_PER_READING = 32

DeviceId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")]
ReadingId = Annotated[str, Field(min_length=1, max_length=128)]
MetricName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.\-]*$")]
# Finite numbers only: NaN and infinities have no place in a sum or a threshold comparison.
MetricValue = Annotated[float, Field(allow_inf_nan=False)]


class Reading(Payload):
    reading_id: ReadingId
    ts: AwareDatetime
    metrics: dict[MetricName, MetricValue] = Field(min_length=1, max_length=MAX_METRICS_PER_READING)


class TelemetryReadings(Payload):
    device_id: DeviceId
    readings: list[Reading] = Field(min_length=1, max_length=MAX_READINGS_PER_EVENT)


class TelemetryAlert(Payload):
    """A metric crossed its threshold (``raised``) or came back (``cleared``); once per crossing."""

    device_id: DeviceId
    metric: MetricName
    state: Literal["raised", "cleared"]
    direction: Literal["above", "below"]
    threshold: float
    value: float
    reading_id: ReadingId
    ts: datetime


MODELS: dict[str, type[Payload]] = {
    TELEMETRY_READINGS: TelemetryReadings,
    TELEMETRY_ALERT: TelemetryAlert,
}
