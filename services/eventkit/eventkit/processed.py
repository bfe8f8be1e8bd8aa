"""What the ledger remembers of each delivery it processed, and how an operator's tool reads it back.

Every delivery a consumer processes leaves its ledger entry (idempotency.py) already; the entry also keeps a
:class:`DeliveryNote` of the delivery — the event's type and subject, its trace, the subscription it came through —
and, once completed, the ten-minute window it completed in. That is enough, with no log search, to:

- draw an order's path across the services (:func:`hops_of`: the entries whose subject is ``orders/<id>``, each a
  consumer, an event type and a completion time), and
- count each subscription's recent deliveries (:func:`processed_since`: a Firestore count aggregation over
  ``subscription`` == S and ``processed_window`` >= W; its composite index is in terraform/firestore.tf).

What it costs: the same one ledger write per delivery, with five more fields (~200 bytes) in it. Only ``subject``,
``subscription`` and ``processed_window`` are indexed (``trace_id`` and ``event_type`` are exempted in Terraform).
The window, not the completion time, is indexed because it only changes every ten minutes: index entries of one
window spread over the entries' ids, so they do not pile onto the end of the index the way a timestamp's do (the
reason ``completed_at`` is not indexed: docs/capacity.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventkit.delivery_note import window_of
from eventkit.idempotency import LEDGER_COLLECTION

MAX_HOPS = 200  # an order's flow has about eight; a cap keeps a runaway subject from loading a page forever
# The ledger entry's fields this module reads (a projection: not the lease fields or the payload hash).
HOP_FIELDS = ("consumer", "status", "event_type", "trace_id", "subscription", "completed_at")


@dataclass(frozen=True)
class Hop:
    """One delivery of an order's flow, processed (or under way) by one consumer."""

    consumer: str
    event_type: str | None
    at: datetime | None  # completed; None while a lease is held
    status: str
    trace_id: str | None
    subscription: str | None


def hops_of(db: Any, subject: str, *, collection: str = LEDGER_COLLECTION) -> list[Hop]:
    """The deliveries whose event was about ``subject`` (e.g. ``orders/<id>``), in the order they completed (those
    under way last). One equality query: no composite index; sorted here, at most :data:`MAX_HOPS`."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        db.collection(collection)
        .select(list(HOP_FIELDS))
        .where(filter=FieldFilter("subject", "==", subject))
        .limit(MAX_HOPS)
    )
    hops = [
        Hop(
            consumer=str(doc.get("consumer")),
            event_type=doc.get("event_type"),
            at=doc.get("completed_at"),
            status=str(doc.get("status")),
            trace_id=doc.get("trace_id"),
            subscription=doc.get("subscription"),
        )
        for doc in (snapshot.to_dict() for snapshot in query.stream())
    ]
    latest = datetime.max.replace(tzinfo=UTC)
    return sorted(hops, key=lambda hop: (hop.at or latest, hop.consumer))


def processed_since(
    db: Any, subscriptions: Iterable[str], since: datetime, *, collection: str = LEDGER_COLLECTION
) -> dict[str, int]:
    """Deliveries completed per subscription (full paths) from the start of ``since``'s window on: count
    aggregations run side by side, so the cost is one number per subscription, however many deliveries."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    window = window_of(since)
    entries = db.collection(collection)
    paths = list(subscriptions)
    queries = [
        entries.where(filter=FieldFilter("subscription", "==", path)).where(
            filter=FieldFilter("processed_window", ">=", window)
        )
        for path in paths
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(_count, queries))
    return dict(zip(paths, counts, strict=True))


def _count(query: Any) -> int:
    (result,) = query.count().get()
    return int(result[0].value)
