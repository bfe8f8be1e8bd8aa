"""Reading what the runtime noted of the deliveries it processed, for the operator's tools (the console):

- :func:`hops_of`: the deliveries of one subject (``orders/<id>``), in the order they completed — an order's path
  across the services (delivery_note.py writes them);
- :func:`processed_since`: deliveries processed per subscription since a time, in ten-minute windows
  (delivery_counts.py writes them).

Both read a handful of documents, however many orders and deliveries the shop has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventkit.delivery_counts import COUNTS_COLLECTION
from eventkit.delivery_note import deliveries_of, window_of

MAX_HOPS = 200  # an order's flow has about eight; a cap keeps a runaway subject from loading a page forever


@dataclass(frozen=True)
class Hop:
    """One delivery of a subject's flow, processed by one consumer."""

    consumer: str
    event_type: str | None
    at: datetime | None
    trace_id: str | None
    subscription: str | None


def hops_of(db: Any, subject: str) -> list[Hop]:
    """The deliveries noted under ``subject``, in the order they completed (at most :data:`MAX_HOPS`)."""
    hops = [
        Hop(
            consumer=str(doc.get("consumer")),
            event_type=doc.get("event_type"),
            at=doc.get("completed_at"),
            trace_id=doc.get("trace_id"),
            subscription=doc.get("subscription"),
        )
        for doc in (snapshot.to_dict() for snapshot in deliveries_of(db, subject).limit(MAX_HOPS).stream())
    ]
    latest = datetime.max.replace(tzinfo=UTC)
    return sorted(hops, key=lambda hop: (hop.at or latest, hop.consumer))


def processed_since(db: Any, subscriptions: Iterable[str], since: datetime) -> dict[str, int]:
    """Deliveries processed per subscription (full paths) from the start of ``since``'s window to now: one query
    over the count documents of those windows (every subscription's, every instance's shard; the single-field
    index on ``window`` serves it)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    totals = dict.fromkeys(subscriptions, 0)
    recent = db.collection(COUNTS_COLLECTION).where(filter=FieldFilter("window", ">=", window_of(since)))
    for snapshot in recent.select(["subscription", "count"]).stream():
        counted = snapshot.to_dict()
        if counted.get("subscription") in totals:
            totals[counted["subscription"]] += int(counted.get("count") or 0)
    return totals
