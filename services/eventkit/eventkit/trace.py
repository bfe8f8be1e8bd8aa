"""W3C ``traceparent`` and Google's ``X-Cloud-Trace-Context``: parse, propagate, format.

Cloud Run adds ``traceparent`` (and the legacy ``X-Cloud-Trace-Context``) to incoming requests; events carry
the producer's ``traceparent`` as a CloudEvents distributed-tracing extension (``ce-traceparent`` attribute).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?(?:;o=([01]))?$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    sampled: bool = True

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def child(self) -> TraceContext:
        """A new span in the same trace, for work this process starts (a publish, say)."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.sampled)

    @classmethod
    def new(cls) -> TraceContext:
        return cls(secrets.token_hex(16), secrets.token_hex(8), True)


def parse_traceparent(value: str | None) -> TraceContext | None:
    """Parse a W3C traceparent; ``None`` for absent or invalid values (all-zero ids are invalid)."""
    if not value or not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match or match.group(1) == "ff":
        return None
    _, trace_id, span_id, flags = match.groups()
    if set(trace_id) == {"0"} or set(span_id) == {"0"}:
        return None
    return TraceContext(trace_id, span_id, bool(int(flags, 16) & 1))


def parse_cloud_trace_context(value: str | None) -> TraceContext | None:
    """Parse ``X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1`` (span id in decimal)."""
    if not value or not isinstance(value, str):
        return None
    match = _CLOUD_TRACE.match(value.strip())
    if not match:
        return None
    trace_id, span_decimal, option = match.groups()
    span_int = int(span_decimal) if span_decimal else 0
    span_id = secrets.token_hex(8) if span_int == 0 or span_int >= 2**64 else f"{span_int:016x}"
    return TraceContext(trace_id.lower(), span_id, option != "0")


def trace_from_headers(headers: Mapping[str, str]) -> TraceContext | None:
    """The caller's trace: ``traceparent`` first, then ``X-Cloud-Trace-Context``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return parse_traceparent(lowered.get("traceparent")) or parse_cloud_trace_context(
        lowered.get("x-cloud-trace-context")
    )


# Attribute names a traceparent may travel under inside a Pub/Sub message, most specific first:
# the CloudEvents distributed-tracing extension, a bare attribute, and the Pub/Sub client's OpenTelemetry one.
TRACE_ATTRIBUTES = ("ce-traceparent", "traceparent", "googclient_traceparent")


def trace_from_attributes(attributes: Mapping[str, str]) -> TraceContext | None:
    for name in TRACE_ATTRIBUTES:
        found = parse_traceparent(attributes.get(name))
        if found:
            return found
    return None
