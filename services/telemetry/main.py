"""telemetry: two functions-framework targets from one source, deployed as two services.

- ``api`` (service ``telemetry-ingest``): ``POST /telemetry``, ``GET /devices/{id}/stats`` — telemetry/ingest.py.
- ``handle_event`` (service ``telemetry-analytics``): the readings consumer — telemetry/analytics.py.

Each target builds what it needs (and checks its configuration) on its first request, because the two services
share this module but not their configuration (only ingest publishes to ``telemetry``, only analytics to
``telemetry-alerts``). The settings they share are checked here, at start-up.
"""

from __future__ import annotations

from typing import Any

from telemetry import analytics, ingest
from telemetry.settings import load_settings

load_settings()  # a bad TELEMETRY_* value stops the process here


def api(request: Any) -> tuple[str, int, dict[str, str]]:
    """functions-framework target (signature type http) of the ingest service."""
    return ingest.handle(request)


def handle_event(request: Any) -> tuple[str, int, dict[str, str]]:
    """functions-framework target (signature type http) of the analytics service."""
    return analytics.consumer().handle(request)
