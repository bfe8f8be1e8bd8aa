"""Log lines in Cloud Logging's structured JSON shape, with trace correlation."""

from __future__ import annotations

import json
import logging

import pytest

from eventkit.structured_log import log_context, setup_logging
from eventkit.trace import TraceContext


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_line_carries_severity_trace_span_and_context_fields(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("inventory", "shop-local")
    trace = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")

    with log_context(trace=trace, event_id="e-1", event_type="shop.order.placed.v1"):
        logging.getLogger("t").warning("low stock", extra={"fields": {"sku": "MUG-1"}})

    [entry] = _lines(capsys)
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "low stock"
    assert entry["service"] == "inventory"
    assert entry["logging.googleapis.com/trace"] == "projects/shop-local/traces/4bf92f3577b34da6a3ce929d0e0e4736"
    assert entry["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert (entry["event_id"], entry["event_type"], entry["sku"]) == ("e-1", "shop.order.placed.v1", "MUG-1")


def test_context_ends_with_its_block(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("inventory", "p")
    with log_context(event_id="inside"):
        pass
    logging.getLogger("t").info("after")

    [entry] = _lines(capsys)
    assert "event_id" not in entry
    assert "logging.googleapis.com/trace" not in entry


def test_exceptions_carry_a_stack_trace_for_error_reporting(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("inventory", "p")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("t").exception("failed")

    [entry] = _lines(capsys)
    assert entry["severity"] == "ERROR"
    assert "ValueError: boom" in entry["stack_trace"]
