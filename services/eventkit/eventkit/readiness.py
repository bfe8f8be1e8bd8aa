"""The one readiness answer every service gives: ``GET /ready`` → 200 once its code is loaded and its worker serves.

Container health checks (the images' HEALTHCHECK, docker-compose) and the Cloud Build smoke step ask it. It is
answered by the service's own function, so a 200 means what a delivery needs: the module imported, its
configuration checked at start-up, gunicorn's worker taking requests. It touches no Google API: an emulator or
Firestore being slow must not restart a healthy instance. Deliveries are always POSTs, so a probe is never read
as a (malformed) delivery, and a POST to this path is not a probe.
"""

from __future__ import annotations

import json
from typing import Any

READY_PATH = "/ready"

Response = tuple[str, int, dict[str, str]]


def readiness_answer(request: Any, service: str) -> Response | None:
    """The answer to a readiness probe, or None when ``request`` is not one (route it as usual)."""
    if request.path != READY_PATH or request.method not in ("GET", "HEAD"):
        return None
    return json.dumps({"status": "ready", "service": service}), 200, {"Content-Type": "application/json"}
