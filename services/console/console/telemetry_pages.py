"""The telemetry pages: the devices, and per device a chart of each metric's windows with its alerts marked.

GET /telemetry                          the devices, most recently heard from first
GET /telemetry/-/devices                the same list as JSON ``{"html": ...}`` for assets/live.js (no device id
                                        starts with ``-``, so this path is never a device's)
GET /telemetry/<device>?minutes=15      a chart per metric: min, mean and max per window, alerts marked
GET /telemetry/<device>/charts?minutes= the charts as JSON ``{"html": ...}`` for assets/live.js

Charts are inline SVG laid out by console/telemetry_chart.py and written by a template: nothing is loaded from
outside the console, and the page reads the same without its script (it just does not update itself).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from console import telemetry_reads as reads
from console.page_error import PageError, only
from console.pages import SECURITY_HEADERS, Response, environment, render
from console.telemetry_chart import layout
from eventkit.catalog.telemetry import DeviceId

RANGES = {15: "15 minutes", 60: "1 hour", 360: "6 hours", 1440: "24 hours"}
DEFAULT_MINUTES = 15  # a quarter of an hour of one-minute windows: each one wide enough to see
LIST_PATH = "-"
_DEVICE_ID: TypeAdapter[str] = TypeAdapter(DeviceId)


class TelemetryPages:
    def __init__(self, service: Any) -> None:
        self.service = service

    def route(self, request: Any, parts: list[str]) -> Response:
        only(request, "GET")
        if parts == ["telemetry"]:
            return self.page("telemetry.html", **self._devices())
        if parts == ["telemetry", LIST_PATH, "devices"]:
            return self.live("_devices.html", **self._devices())
        if len(parts) in (2, 3) and parts[1] != LIST_PATH and parts[2:] in ([], ["charts"]):
            values = self._charts(_device_id(parts[1]), _minutes(request.args.get("minutes")))
            if len(parts) == 2:
                return self.page("device.html", **values)
            return self.live("_charts.html", **values)
        raise PageError(404, "Not found", f"There is no page at {request.path}.")

    @staticmethod
    def page(template: str, **values: Any) -> Response:
        return render(template, page="telemetry", **values)

    @staticmethod
    def live(fragment: str, **values: Any) -> Response:
        html = environment().get_template(fragment).render(**values)
        return json.dumps({"html": html}), 200, {**SECURITY_HEADERS, "Content-Type": "application/json"}

    def _devices(self) -> dict[str, Any]:
        return {"devices": reads.devices(self.service.db), "limit": reads.MAX_DEVICES}

    def _charts(self, device_id: str, minutes: int) -> dict[str, Any]:
        db = self.service.db
        device = reads.device(db, device_id)
        if device is None:
            raise PageError(404, "Not found", f"No readings from device {device_id!r} have been counted.")
        # The range ends at the next whole minute, so the window under way is in it.
        end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = end - timedelta(minutes=minutes)
        alerts = reads.alerts(db, device_id, start, end)
        metrics = sorted({*device.latest, *alerts})
        charts = [
            layout(m, reads.windows(db, device_id, m, start, end), alerts.get(m, []), start, end) for m in metrics
        ]
        return {
            "device": device,
            "charts": charts,
            "minutes": minutes,
            "ranges": RANGES,
            "range_text": RANGES[minutes],
            "start": start,
            "end": end,
        }


def _device_id(text: str) -> str:
    try:
        return _DEVICE_ID.validate_python(text)
    except ValidationError:
        raise PageError(404, "Not found", "That is not a device id.") from None


def _minutes(text: str | None) -> int:
    if not text:
        return DEFAULT_MINUTES
    if not text.isdigit() or int(text) not in RANGES:
        raise PageError(400, "Unknown range", f"minutes must be one of {', '.join(map(str, RANGES))}.")
    return int(text)
