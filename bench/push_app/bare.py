"""The baseline of the push-path and cold-start benchmarks: a functions-framework function that returns at once."""

from __future__ import annotations

from typing import Any


def bare(request: Any) -> tuple[str, int]:
    return "ok", 200
