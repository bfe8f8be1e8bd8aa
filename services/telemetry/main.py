"""telemetry: two functions-framework targets from one source, deployed as two services.

- ``api`` (service ``telemetry-ingest``): ``POST /telemetry``, ``GET /devices/{id}/stats`` — telemetry/ingest.py.
- ``handle_event`` (service ``telemetry-analytics``): the readings consumer — telemetry/analytics.py.

Each target builds what it needs (and checks its configuration) on its first request, because the two services
share this module but not their configuration (only ingest publishes to ``telemetry``, only analytics to
``telemetry-alerts``). The settings they share are checked here, at start-up.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from telemetry.settings import load_settings

load_settings()  # a bad TELEMETRY_* value stops the process here

# Each service imports its own side at start-up, not the other's: the ingest service never uses the consumer
# runtime, whose import would lengthen its cold start. FUNCTION_TARGET names the served target wherever a
# service runs (Terraform, the Dockerfile, docker-compose, the local stack); without it, both sides are imported.
SIDES = {"api": "telemetry.ingest", "handle_event": "telemetry.analytics"}


def _import_served_sides() -> None:
    for target, module in SIDES.items():
        if os.environ.get("FUNCTION_TARGET", target) == target:
            importlib.import_module(module)


_import_served_sides()


def api(request: Any) -> tuple[str, int, dict[str, str]]:
    """functions-framework target (signature type http) of the ingest service."""
    from telemetry import ingest  # already imported at start-up when this is the served target

    return ingest.handle(request)


def handle_event(request: Any) -> tuple[str, int, dict[str, str]]:
    """functions-framework target (signature type http) of the analytics service."""
    from telemetry import analytics  # already imported at start-up when this is the served target

    return analytics.consumer().handle(request)
