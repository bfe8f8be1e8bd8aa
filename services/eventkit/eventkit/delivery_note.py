"""What the runtime notes of each delivery it processed, for the operator: one small document per delivery under
the event's subject, so an order's path across the services is read by listing one short collection.

    subjects/{subject, escaped}/deliveries/{consumer:key}
        consumer, event_type, trace_id, subscription, completed_at, expires_at (TTL: terraform/firestore.tf)

Written in the delivery's own transaction, with its ledger entry (``Consumer.run_once``), or right after a
leased side effect completed (``HandlerContext.side_effect_once``): a delivery found to be a duplicate writes none.
An event without a subject (telemetry readings, storage notifications) notes nothing. Cost: one more document
write per delivery with a subject (about six per order), in a commit the delivery makes anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from eventkit.delivery import Delivery

SUBJECTS = "subjects"
DELIVERIES = "deliveries"
WINDOW = timedelta(minutes=10)  # how eventkit.delivery_counts buckets deliveries in time


@dataclass(frozen=True)
class DeliveryNote:
    """The delivery as an operator needs it."""

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


def deliveries_of(db: Any, subject: str) -> Any:
    """The collection of a subject's noted deliveries (the subject escaped into one document id)."""
    return db.collection(SUBJECTS).document(quote(subject, safe="")).collection(DELIVERIES)


def delivery_record(
    db: Any, note: DeliveryNote, consumer: str, entry_id: str, at: datetime, retention: timedelta
) -> tuple[Any, dict[str, Any]] | None:
    """(document, fields) of the note, for the caller to write; None for an event without a subject.
    ``entry_id``: the delivery's ledger document id, so a retried transaction writes the same document."""
    if not note.subject:
        return None
    return (
        deliveries_of(db, note.subject).document(entry_id),
        {
            "consumer": consumer,
            "event_type": note.event_type,
            "trace_id": note.trace_id,
            "subscription": note.subscription,
            "completed_at": at,
            "expires_at": at + retention,
        },
    )


def window_of(at: datetime) -> datetime:
    """The start of the :data:`WINDOW` ``at`` falls in (UTC)."""
    step = int(WINDOW.total_seconds())
    return datetime.fromtimestamp(int(at.timestamp()) // step * step, UTC)
