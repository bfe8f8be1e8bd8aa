"""The note a ledger entry keeps of the delivery it is for: the event's type and subject, its trace, the
subscription it came through, and the ten-minute window it completed in (what eventkit.processed reads back for
the operator: an order's path across the services, each subscription's recent deliveries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventkit.delivery import Delivery

WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class DeliveryNote:
    """The delivery a ledger entry is for, as an operator needs it."""

    event_type: str | None
    subject: str | None
    trace_id: str | None
    subscription: str | None

    @classmethod
    def of(cls, delivery: Delivery, trace_id: str | None = None) -> DeliveryNote:
        """``trace_id``: the request's own trace when the delivery carries none (the edge started one)."""
        event = delivery.event
        return cls(
            event_type=delivery.kind,
            subject=event.subject if event is not None else None,
            trace_id=delivery.trace.trace_id if delivery.trace is not None else trace_id,
            subscription=delivery.message.subscription if delivery.message is not None else None,
        )

    def fields(self) -> dict[str, Any]:
        return {
            "event_type": self.event_type,
            "subject": self.subject,
            "trace_id": self.trace_id,
            "subscription": self.subscription,
        }


def window_of(at: datetime) -> datetime:
    """The start of the :data:`WINDOW` ``at`` falls in (UTC)."""
    step = int(WINDOW.total_seconds())
    return datetime.fromtimestamp(int(at.timestamp()) // step * step, UTC)


def completion_fields(at: datetime) -> dict[str, Any]:
    """What an entry gets when it completes, beside its state."""
    return {"completed_at": at, "processed_window": window_of(at)}
