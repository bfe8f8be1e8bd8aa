"""Waiting, bounded, for something the system does asynchronously (a push, a saga step, a sweep).

A test that asserts something did *not* happen (no second effect, no third alert) first waits for proof that the
system is done with its input — ``acknowledged`` below, a ledger entry, a record per delivery — never for a fixed
time: a sleep passes whenever the system is merely slower than the sleep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

# The answers a consumer logs (at INFO, eventkit.consumer) that acknowledge a push: Pub/Sub pushes that message
# no more. ("ignored" is logged at DEBUG only; "will retry" and "handler failed" ask for a redelivery.)
ACKNOWLEDGING_ANSWERS = ("processed", "duplicate")


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


def acknowledged(log_text: str, message_ids: Iterable[str]) -> set[str]:
    """Which of ``message_ids`` a consumer has acknowledged, by its log: eventkit logs one line per push it answers,
    with the push's ``message_id``. Once all are, the consumer is done with them, and what they did is final."""
    wanted = set(message_ids)
    found = set()
    for line in log_text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") in ACKNOWLEDGING_ANSWERS and entry.get("message_id") in wanted:
            found.add(entry["message_id"])
    return found


def wait_until_acknowledged(
    log_of: Callable[[str], str], consumer: str, message_ids: Iterable[str], seconds: float = 60.0
) -> None:
    """Wait until ``consumer`` (a stack service, its log read by ``log_of``) has acknowledged every message."""
    wanted = set(message_ids)
    wait_for(
        lambda: acknowledged(log_of(consumer), wanted) == wanted,
        seconds,
        f"{consumer} acknowledging all {len(wanted)} messages",
        interval=0.3,
    )
