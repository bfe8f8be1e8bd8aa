"""Rendering a page: Jinja2 templates with autoescape on (every value a payload, an attribute or an error holds is
attacker-controlled), answered with headers that keep the page to itself: no script, style or frame from anywhere
but the console (Content-Security-Policy), no caching of operator data.
"""

from __future__ import annotations

import json
import mimetypes
from base64 import b64decode
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader

from eventkit.failure_records import subscription_id

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "assets"
HTML = "text/html; charset=utf-8"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

Response = tuple[str | bytes, int, dict[str, str]]


@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters["when"] = when
    env.filters["money"] = money
    env.filters["subscription_id"] = subscription_id
    return env


def render(template: str, code: int = 200, headers: dict[str, str] | None = None, **values: Any) -> Response:
    """``template`` rendered with ``values``, answered with HTTP status ``code``."""
    body = environment().get_template(template).render(**values)
    return body, code, {"Content-Type": HTML, **SECURITY_HEADERS, **(headers or {})}


def redirect(location: str) -> Response:
    """303 See Other: after a POST, the browser GETs the page it lands on (a reload does not post again)."""
    return "", 303, {"Location": location, **SECURITY_HEADERS}


def static_file(name: str) -> Response | None:
    path = (ASSETS / name).resolve()
    if path.parent != ASSETS or not path.is_file():
        return None
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return path.read_bytes(), 200, {"Content-Type": kind, "Cache-Control": "max-age=300", **_nosniff()}


def _nosniff() -> dict[str, str]:
    return {"X-Content-Type-Options": "nosniff"}


def when(value: Any) -> str:
    """A stored time as an operator reads it: UTC, to the second."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "—" if value is None else str(value)


def money(minor: Any, currency: str | None) -> str:
    """An amount in minor units (how the shop stores prices) as ``12.00 EUR``."""
    if not isinstance(minor, int):
        return "—"
    return f"{minor / 100:.2f} {currency or ''}".strip()


def decoded_payload(record: dict[str, Any]) -> tuple[str, str]:
    """(how it was decoded, the text to show): JSON pretty-printed, other text as it is, binary as base64."""
    payload = record.get("payload") or {}
    if "base64" in payload:
        raw = b64decode(payload["base64"])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "binary (base64)", str(payload["base64"])
    else:
        text = str(payload.get("text", ""))
    try:
        return "JSON", json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        return "text", text
