"""JSON HTTP APIs (not event consumers): reading a JSON body safely and answering errors in one shape.

Every error is ``{"error": {"code": ..., "message": ..., "details": [...]}}`` with the status that names the
problem: 400 malformed JSON, 404, 405, 409, 413 body too large, 415 not JSON, 422 validation, 503 try later.
Bodies are size-checked before they are read, so a 10 MB upload is refused without being buffered.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
JSON_HEADERS = {"Content-Type": "application/json"}

Response = tuple[str, int, dict[str, str]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []

    def response(self) -> Response:
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        return json.dumps(body), self.status, dict(JSON_HEADERS)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json.dumps(body, default=str), status, {**JSON_HEADERS, **(headers or {})}


def read_json_body(request: Any, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Any:
    """The request's JSON body, or an ApiError (415, 413, 400) that says what was wrong."""
    content_type = (request.mimetype or "").lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(
            415, "unsupported_media_type", f"Content-Type must be application/json, got {content_type or 'none'!r}"
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, "payload_too_large", f"body is {request.content_length} bytes; the limit is {max_bytes}")
    # Without a Content-Length (chunked), read at most one byte past the limit.
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ApiError(413, "payload_too_large", f"body exceeds the limit of {max_bytes} bytes")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}") from None


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def method_not_allowed(method: str, path: str, allowed: list[str]) -> ApiError:
    return ApiError(
        405, "method_not_allowed", f"{method} is not allowed on {path}; allowed: {', '.join(allowed)}", allowed
    )
