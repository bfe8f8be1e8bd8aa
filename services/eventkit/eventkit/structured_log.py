"""Structured logs in Cloud Logging's JSON shape: one object per line on stdout.

Cloud Run's logging agent turns each JSON line into a LogEntry: ``severity`` becomes the entry's severity and
``logging.googleapis.com/trace`` / ``logging.googleapis.com/spanId`` correlate it with Cloud Trace
(https://cloud.google.com/logging/docs/structured-logging#special-payload-fields). Per-delivery fields (trace,
event id, type, source) live in a context variable, set once per request by the consumer runtime.

Log with key-value pairs, never formatted strings: ``log.info("reserved", extra={"fields": {"order_id": o}})``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from eventkit.trace import TraceContext

# Immutable default (a fresh dict is set per context); the value is replaced, never mutated in place.
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "eventkit_log_context", default=MappingProxyType({})
)
_trace: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar("eventkit_trace", default=None)

# Python level name -> Cloud Logging LogSeverity.
_SEVERITY = {
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
    "CRITICAL": "CRITICAL",
}


def current_trace() -> TraceContext | None:
    return _trace.get()


@contextlib.contextmanager
def log_context(trace: TraceContext | None = None, **fields: Any) -> Iterator[None]:
    """Attach ``fields`` (and a trace) to every log line written inside the block."""
    fields_token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    trace_token = _trace.set(trace) if trace is not None else None
    try:
        yield
    finally:
        _context.reset(fields_token)
        if trace_token is not None:
            _trace.reset(trace_token)


def bind(**fields: Any) -> None:
    """Add fields to the current context (e.g. the event id once the delivery is parsed)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def bind_trace(trace: TraceContext | None) -> None:
    if trace is not None:
        _trace.set(trace)


class CloudLoggingFormatter(logging.Formatter):
    """Formats a record as one Cloud Logging JSON object."""

    def __init__(self, service: str, project: str | None) -> None:
        super().__init__()
        self.service = service
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "service": self.service,
            "logger": record.name,
        }
        entry.update(_context.get())
        extra_fields = getattr(record, "fields", None)
        if isinstance(extra_fields, dict):
            entry.update(extra_fields)
        trace = _trace.get()
        if trace is not None:
            # Without a project the trace cannot be linked; keep the bare id so it is still searchable.
            entry["logging.googleapis.com/trace"] = (
                f"projects/{self.project}/traces/{trace.trace_id}" if self.project else trace.trace_id
            )
            entry["logging.googleapis.com/spanId"] = trace.span_id
            entry["logging.googleapis.com/trace_sampled"] = trace.sampled
        if record.exc_info:
            # Error Reporting picks up a stack trace in `stack_trace` (or in the message).
            entry["stack_trace"] = "".join(traceback.format_exception(*record.exc_info))
        entry["logging.googleapis.com/sourceLocation"] = {
            "file": record.pathname,
            "line": record.lineno,
            "function": record.funcName,
        }
        return json.dumps(entry, default=str, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at emit time (so test capture and redirection see the lines)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup_logging(service: str, project: str | None, level: str | None = None) -> None:
    """Route every logger to one JSON-lines handler on stdout. Called once per process, at start-up."""
    handler = _StdoutHandler()
    handler.setFormatter(CloudLoggingFormatter(service, project))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel((level or os.environ.get("LOG_LEVEL") or "INFO").upper())
    # The Google client libraries are chatty at INFO about channel set-up.
    for noisy in ("google", "urllib3", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
