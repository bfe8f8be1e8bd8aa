"""An order's path across the services, pure: the order placed, then every delivery of its flow in the order it
was processed, each with how long after the step before it came — so the longest wait stands out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from eventkit.processed import Hop

PLACED = "shop.order.placed.v1"


@dataclass(frozen=True)
class Step:
    service: str
    event_type: str | None
    at: datetime | None  # None: under way (a lease held), not processed yet
    after: timedelta | None  # since the step before; None for the first, or one under way
    trace_id: str | None
    longest: bool = False  # the longest wait of the path


def order_path(order: dict[str, Any], hops: list[Hop], placed_by: str = "orders") -> list[Step]:
    """The order's steps: its placing (``created_at``, by the orders API), then its hops in time order."""
    steps = [Step(placed_by, PLACED, order.get("created_at"), None, order.get("trace_id"))]
    for hop in hops:
        before = steps[-1].at
        after = hop.at - before if hop.at is not None and before is not None else None
        steps.append(Step(hop.consumer, hop.event_type, hop.at, after, hop.trace_id))
    waits = [step.after for step in steps if step.after is not None]
    if len(waits) > 1:  # with one wait there is nothing to compare it with
        index = next(i for i, step in enumerate(steps) if step.after == max(waits))
        steps[index] = replace(steps[index], longest=True)
    return steps


def traces_of(steps: list[Step]) -> list[str]:
    """The distinct trace ids of the path, in order of appearance (one, when the flow kept its trace)."""
    return list(dict.fromkeys(step.trace_id for step in steps if step.trace_id))


def duration(value: timedelta | None) -> str:
    """A wait as an operator reads it: ``+85 ms``, ``+2.4 s``, ``+3 min 5 s``."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 1:
        return f"+{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"+{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"+{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"+{hours} h {minutes} min"
