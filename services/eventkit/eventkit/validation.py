"""Turning pydantic's validation errors into one sentence that names each bad field."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """``items[2].quantity: must be >= 1, got 0; email: field required`` — at most ten problems."""
    parts: list[str] = []
    for error in exc.errors()[:10]:
        location = _location(error.get("loc", ()), prefix)
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        received = error.get("input")
        if error.get("type") == "missing":
            parts.append(f"{location}: is required")
        else:
            shown = repr(received)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            parts.append(f"{location}: {message}, got {shown}")
    more = len(exc.errors()) - 10
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _location(loc: tuple[int | str, ...], prefix: str) -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(body)"
