"""The ingest service (``telemetry-ingest``): ``POST /telemetry`` and ``GET /devices/{id}/stats``.

``POST /telemetry`` validates each reading and publishes the valid ones to the ``telemetry`` topic, one event per
device (ordering key = device id), then answers 202 with a verdict per item.
"""

from __future__ import annotations

import functools
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from eventkit import RetryableError, Service
from eventkit.catalog.telemetry import TELEMETRY_READINGS
from eventkit.http_api import ApiError, json_response, not_found, read_json_body
from telemetry import store
from telemetry.readings import events_per_device
from telemetry.settings import load_settings
from telemetry.validation import DEVICE_ID, METRIC_NAME, BodyShapeError, parse_rfc3339, validate_batch

INGEST = "telemetry-ingest"
READINGS_TOPIC = "telemetry"
STATS_PATH = re.compile(r"^/devices/(?P<device_id>[^/]+)/stats/?$")
MAX_WINDOWS_PER_ANSWER = 1000
DEFAULT_STATS_SPAN = timedelta(hours=1)

log = logging.getLogger("telemetry")
_publishing = ThreadPoolExecutor(max_workers=8, thread_name_prefix="publish")


@functools.cache
def service() -> Service:
    """The ingest service's runtime, built on first use (its configuration is checked then)."""
    return Service(INGEST, topics=[READINGS_TOPIC])


def handle(request: Any) -> tuple[str, int, dict[str, str]]:
    """The ingest service's routes (main.api is its functions-framework target)."""
    return service().serve_api(request, route)


def route(request: Any) -> tuple[str, int, dict[str, str]]:
    stats = STATS_PATH.match(request.path)
    if request.path.rstrip("/") == "/telemetry":
        _allow(request, "POST")
        return post_telemetry(request)
    if stats:
        _allow(request, "GET")
        return get_stats(request, stats["device_id"])
    raise not_found(request.path)


def post_telemetry(request: Any) -> tuple[str, int, dict[str, str]]:
    body = read_json_body(request, load_settings().max_body_bytes)  # 415 not JSON, 413 too large, 400 malformed
    try:
        batch = validate_batch(body, datetime.now(UTC), load_settings().limits)
    except BodyShapeError as exc:
        raise ApiError(422, "invalid_body", str(exc)) from None
    verdicts = [item.to_json() for item in batch.items]
    if not batch.readings:
        raise ApiError(422, "no_valid_readings", "no reading in the body is valid; nothing was accepted", verdicts)

    runtime = service()
    events = list(events_per_device(batch.readings))

    def publish(event: Any) -> str:
        domain_event = runtime.event(TELEMETRY_READINGS, event.data(), subject=event.device_id, event_id=event.event_id)
        return runtime.publish(READINGS_TOPIC, domain_event, ordering_key=event.device_id)

    try:
        list(_publishing.map(publish, events))
    except RetryableError as exc:
        # Nothing is lost: the device retries, and the same readings make the same event ids downstream.
        raise ApiError(503, "unavailable", f"could not publish the readings; retry the request ({exc})") from None
    answer = {"accepted": batch.accepted, "rejected": batch.rejected, "events": len(events), "items": verdicts}
    return json_response(answer, 202)


def get_stats(request: Any, device_id: str) -> tuple[str, int, dict[str, str]]:
    if not DEVICE_ID.match(device_id):
        raise not_found(f"device {device_id!r}")
    metric = request.args.get("metric") or None
    if metric is not None and not METRIC_NAME.match(metric):
        raise ApiError(422, "invalid_query", f"metric: must be a metric name like 'temperature', got {metric!r}")
    end = _query_time(request, "to") or datetime.now(UTC)
    start = _query_time(request, "from") or end - DEFAULT_STATS_SPAN
    if start >= end:
        raise ApiError(422, "invalid_query", f"from ({start.isoformat()}) must be before to ({end.isoformat()})")

    db = service().db
    device = store.device_ref(db, device_id).get()
    if not device.exists:
        raise not_found(f"device {device_id!r}")
    device_doc = device.to_dict()
    metrics = [metric] if metric else sorted((device_doc.get("latest") or {}).keys())
    windows, truncated = store.query_windows(db, device_id, metrics, start, end, MAX_WINDOWS_PER_ANSWER)
    answer = {
        "device_id": device_id,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "windows": windows,
        "truncated": truncated,
        **store.device_json(device_doc),
    }
    return json_response(answer)


def _allow(request: Any, method: str) -> None:
    if request.method != method:
        raise ApiError(405, "method_not_allowed", f"{request.method} is not allowed on {request.path}", [method])


def _query_time(request: Any, name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    parsed = parse_rfc3339(raw)
    if parsed is None:
        raise ApiError(422, "invalid_query", f"{name}: must be an RFC 3339 timestamp, got {raw!r}")
    return parsed
