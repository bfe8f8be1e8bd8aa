"""Deliveries processed, counted per subscription and ten-minute window: what the console's overview shows.

    delivery_counts/{subscription id}@{window start, ISO}#{shard}
        subscription (full path), window, count, expires_at (TTL: terraform/firestore.tf)

Each instance adds up its own processed deliveries in memory and writes the sums as increments, in one batch, when
the last request in flight leaves (service.py) or, under constant load, once :data:`FLUSH_EVERY` has passed — on
Cloud Run, CPU is allocated during requests, so nothing waits for a later one. Each instance writes to one of
:data:`SHARDS` documents per subscription and window, chosen when it starts: the instances of a busy consumer
spread their increments instead of all meeting on one document (Firestore sustains about one write a second per
document). Reading is one query from a window on (:func:`eventkit.processed.processed_since`): the overview gets
every subscription's last hour in one round trip, however many deliveries there were.

What it costs and what it may miss: one batched write per instance per flush (one per request when requests come
one at a time, and then before that request's answer), never a write in a delivery's transaction, so it adds no
contention to it. The counts a process holds when it is killed are lost: the figure is health, not accounting.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from eventkit.delivery_note import window_of

log = logging.getLogger(__name__)

COUNTS_COLLECTION = "delivery_counts"
FLUSH_EVERY = 1.0  # seconds: the longest a count waits while requests keep arriving
# The flush runs before a request's answer: when Firestore does not answer, the counts wait for the next flush
# instead of holding the answer (no retries, a short deadline).
FLUSH_TIMEOUT = 2.0
RETRY_AFTER = 5.0  # seconds without a flush after one failed: requests are not held by an outage one by one
RETENTION = timedelta(days=2)
SHARDS = 16  # counter documents per subscription and window; ~20 instances of one consumer write ~1 a second to each


def count_id(subscription: str, window: datetime, shard: int) -> str:
    """``sub@2026-12-06T09:10:00+00:00#3`` (the subscription's id, not its path: ids are unique in a project)."""
    return f"{subscription.rsplit('/', 1)[-1]}@{window.isoformat()}#{shard}"


class DeliveryCounts:
    def __init__(self, db: Any | None, shard: int | None = None) -> None:
        """``db`` None: counted, never written (a service on in-memory stores). ``shard``: this instance's counter
        documents (default: one of :data:`SHARDS` at random)."""
        self._db = db
        self._shard = random.randrange(SHARDS) if shard is None else shard
        self._pending: Counter[tuple[str, datetime]] = Counter()
        self._since = 0.0  # when the oldest pending count was added (monotonic)
        self._quiet_until = 0.0  # no flush before this (monotonic), after a failed one
        self._lock = threading.Lock()

    def add(self, subscription: str | None) -> None:
        """Count one processed delivery that came through ``subscription`` (a push without one is not counted)."""
        if not subscription:
            return
        with self._lock:
            if not self._pending:
                self._since = time.monotonic()
            self._pending[(subscription, window_of(datetime.now(UTC)))] += 1

    def due(self, last_out: bool) -> bool:
        """Whether to write now: the last request in flight is leaving, or a count has waited long enough."""
        with self._lock:
            now = time.monotonic()
            return bool(self._pending) and now >= self._quiet_until and (last_out or now - self._since >= FLUSH_EVERY)

    def flush(self) -> int:
        """Write the pending sums as increments (one batch); the deliveries written. Failures are logged."""
        from google.cloud import firestore

        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending or self._db is None:
            return 0
        batch = self._db.batch()
        for (subscription, window), count in pending.items():
            batch.set(
                self._db.collection(COUNTS_COLLECTION).document(count_id(subscription, window, self._shard)),
                {
                    "subscription": subscription,
                    "window": window,
                    "count": firestore.Increment(count),
                    "expires_at": window + RETENTION,
                },
                merge=True,
            )
        try:
            batch.commit(retry=None, timeout=FLUSH_TIMEOUT)
        except Exception as exc:
            with self._lock:  # kept for the next flush (an increment that did land is counted twice: health, not money)
                self._pending.update(pending)
                self._since, self._quiet_until = time.monotonic(), time.monotonic() + RETRY_AFTER
            log.warning("delivery counts not written yet", extra={"fields": {"deliveries": sum(pending.values()),
                                                                              "error": str(exc)}})  # fmt: skip
            return 0
        return sum(pending.values())
