"""eventkit.readiness: which requests are readiness probes, and what they are answered."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from eventkit.readiness import READY_PATH, readiness_answer


def _request(method: str, path: str) -> SimpleNamespace:
    return SimpleNamespace(method=method, path=path)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_get_of_the_ready_path_is_answered_ready_by_the_service(method: str) -> None:
    body, status, headers = readiness_answer(_request(method, READY_PATH), "inventory")

    assert status == 200
    assert json.loads(body) == {"status": "ready", "service": "inventory"}
    assert headers == {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", READY_PATH), ("PUT", READY_PATH), ("GET", "/"), ("GET", "/ready/"), ("GET", "/readyz"), ("POST", "/")],
)
def test_anything_else_is_left_to_the_service(method: str, path: str) -> None:
    """A push is a POST (to any path): never taken for a probe."""
    assert readiness_answer(_request(method, path), "inventory") is None
