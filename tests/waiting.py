"""Waiting, bounded, for something the system does asynchronously (a push, a saga step, a sweep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    condition: Callable[[], Any], seconds: float = 30.0, what: str = "condition", interval: float = 0.2
) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not reached within {seconds:g} s")
