"""Transactional outbox: no event is lost between a state change and its publish.

A producer writes each event it owes into the ``outbox`` collection in the SAME Firestore transaction as the
state change that caused it. After the commit it publishes the entries and marks them sent (a service's runtime
queues the marks for a batched write: sent_marks.py). If the process dies
or Pub/Sub is unavailable in between, the entry stays unsent and is published later by:

- the next delivery of the same cause (a consumer that answered 503 is redelivered; its ledger says
  "duplicate", and the runtime flushes that cause's unsent entries), or
- the sweeper (:meth:`Outbox.sweep`), run by Cloud Scheduler in the cloud and periodically by the local stack.

Entries are stored already encoded (Pub/Sub data + attributes + full topic path), so the sweeper needs no
knowledge of event types.

Each entry carries a random ``shard`` (0..OUTBOX_SHARDS-1), and the sweeper asks each shard for its oldest unsent
entries (index ``(shard, sent, created_at)``, terraform/firestore.tf). Firestore takes at most 500 writes a second
into one index range of growing values; with the shard in front, the entries' growing ``created_at`` spread over
OUTBOX_SHARDS ranges (Firestore's "sharded timestamps" recipe), so the sweeper's index stops capping the shop near
125 orders a second (docs/capacity.md). A crash between publish and "mark sent" publishes twice; consumers dedupe on the
CloudEvent id, which is the entry's id.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from eventkit.errors import RetryableError
from eventkit.events import DomainEvent, encode_for_pubsub
from eventkit.publish import send as publish_send
from eventkit.sent_marks import SentMarks
from eventkit.structured_log import bind

log = logging.getLogger(__name__)

OUTBOX_COLLECTION = "outbox"
# Entries are removed by a TTL policy on expires_at once sent (see terraform/); unsent ones are kept.
SENT_RETENTION = timedelta(days=7)
# Index ranges the sweeper's index is spread over: each takes ~500 writes a second, an order writes 8 (4 entries,
# each again when marked sent), so 16 carry ~1,000 orders a second. Changing it: entries of the shards dropped are
# never swept (raise it freely; lower it only with nothing unsent).
OUTBOX_SHARDS = 16


class Send(Protocol):
    """Publish one encoded message and return its message id (``eventkit.publish.send``)."""

    def __call__(
        self,
        topic_path: str,
        data: bytes,
        attributes: dict[str, str],
        *,
        ordering_key: str | None = ...,
        timeout: float = ...,
        log_line: bool = ...,
    ) -> str: ...


@dataclass(frozen=True)
class StagedEvent:
    """An event written to the outbox in a transaction: everything needed to publish it without reading it back."""

    event_id: str
    topic: str
    data: bytes
    attributes: dict[str, str]
    ordering_key: str | None = None


@dataclass(frozen=True)
class SweepResult:
    published: int
    failed: int


class Outbox:
    def __init__(
        self,
        client: Any,
        *,
        collection: str = OUTBOX_COLLECTION,
        publish_timeout: float = 10.0,
        batch_marks: Callable[[], bool] | None = None,
        send: Send = publish_send,
        shards: int = OUTBOX_SHARDS,
    ) -> None:
        """``batch_marks()``: whether :meth:`publish_committed` may queue its "sent" marks for a batched write
        (sent_marks.py) now, instead of writing them at once. A service's runtime answers "while another request
        is in flight" (service.py); without it, and always for the sweeper, each mark is written at once."""
        self.client = client
        self.collection = collection
        self.shards = shards
        self.publish_timeout = publish_timeout
        self.send = send
        self.batch_marks = batch_marks
        self.sent_marks = SentMarks(self._ref, client, retention=SENT_RETENTION) if batch_marks else None

    def _ref(self, event_id: str) -> Any:
        return self.client.collection(self.collection).document(event_id)

    def add(
        self,
        transaction: Any,
        topic_path: str,
        event: DomainEvent,
        *,
        ordering_key: str | None = None,
        cause: str | None = None,
    ) -> StagedEvent:
        """Stage ``event`` in ``transaction``; it commits (or not) with the caller's state change."""
        data, attributes = encode_for_pubsub(event)
        transaction.set(
            self._ref(event.id),
            {
                "topic": topic_path,
                "data": data.decode("utf-8"),
                "attributes": attributes,
                "ordering_key": ordering_key,
                "event_type": event.type,
                "cause": cause,
                "sent": False,
                "created_at": datetime.now(UTC),
                "shard": random.randrange(self.shards),
            },
        )
        return StagedEvent(event.id, topic_path, data, attributes, ordering_key)

    def publish(self, event_ids: Iterable[str]) -> int:
        """Publish the given entries that are still unsent; raise RetryableError if any could not be."""
        published, failures = 0, []
        for event_id in event_ids:
            snapshot = self._ref(event_id).get()
            if not snapshot.exists or snapshot.get("sent"):
                continue
            try:
                self._send(snapshot)
                published += 1
            except RetryableError as exc:
                failures.append(str(exc))
        if failures:
            raise RetryableError(f"{len(failures)} outbox event(s) not published yet: {failures[0]}")
        return published

    def publish_committed(self, staged: Iterable[StagedEvent], *, in_request_line: bool = False) -> int:
        """Publish events this process has just committed, without reading them back (one round trip less per
        event); raise RetryableError if any could not be. Each is marked sent after its publish.

        ``in_request_line``: the message ids go into the current request's log context (``published_messages``,
        event id → message id) for the request's own log line, instead of a "published" line each.

        With ``batch_marks``, the marks join the batch while ``batch_marks()`` says so (another request is in
        flight: the batch is written within milliseconds, while Cloud Run still gives the instance CPU, and the last
        request out flushes what is left: :meth:`flush_marks`); otherwise each is written at once.
        """
        batched = self.batch_marks is not None and self.batch_marks()
        return self._publish_staged(staged, batched, in_request_line)

    def flush_marks(self) -> int:
        """Write the queued "sent" marks now (the last request in flight does, before it answers)."""
        return self.sent_marks.flush() if self.sent_marks is not None and self.sent_marks.pending else 0

    def _publish_staged(self, staged: Iterable[StagedEvent], batched: bool, in_request_line: bool) -> int:
        published, failures, message_ids = 0, [], {}
        for entry in staged:
            try:
                message_id = self.send(
                    entry.topic,
                    entry.data,
                    entry.attributes,
                    ordering_key=entry.ordering_key,
                    timeout=self.publish_timeout,
                    log_line=not in_request_line,
                )
            except RetryableError as exc:
                failures.append(str(exc))
                continue
            message_ids[entry.event_id] = message_id
            if batched and self.sent_marks is not None:
                self.sent_marks.add(entry.event_id, message_id)
            else:
                self._mark_sent(self._ref(entry.event_id), message_id)
            published += 1
        if in_request_line and message_ids:
            bind(published_messages=message_ids)
        if failures:
            raise RetryableError(f"{len(failures)} outbox event(s) not published yet: {failures[0]}")
        return published

    def publish_for_cause(self, cause: str) -> int:
        """Publish the unsent entries a given delivery produced (used when that delivery comes again)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.client.collection(self.collection).where(filter=FieldFilter("cause", "==", cause))
        return self.publish(snapshot.id for snapshot in query.stream() if not snapshot.get("sent"))

    def sweep(self, older_than: timedelta = timedelta(seconds=30), limit: int = 200) -> SweepResult:
        """Publish entries left unsent for longer than ``older_than`` (oldest first, across the shards)."""
        cutoff = datetime.now(UTC) - older_than
        per_shard = [self._unsent(shard, cutoff, limit) for shard in range(self.shards)]
        oldest_first = heapq.merge(*per_shard, self._unsent_unsharded(cutoff, limit), key=lambda s: s.get("created_at"))
        published = failed = 0
        for snapshot in itertools.islice(oldest_first, limit):
            try:
                self._send(snapshot)
                published += 1
            except RetryableError as exc:
                failed += 1
                log.warning(
                    "outbox sweep could not publish", extra={"fields": {"event_id": snapshot.id, "error": str(exc)}}
                )
        if published or failed:
            log.info("outbox swept", extra={"fields": {"published": published, "failed": failed}})
        return SweepResult(published, failed)

    def _unsent(self, shard: int, cutoff: datetime, limit: int) -> Iterator[Any]:
        """One shard's unsent entries created before ``cutoff``, oldest first."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("shard", "==", shard))
            .where(filter=FieldFilter("sent", "==", False))
            .where(filter=FieldFilter("created_at", "<=", cutoff))
            .order_by("created_at")
            .limit(limit)
        )
        return query.stream()

    def _unsent_unsharded(self, cutoff: datetime, limit: int) -> list[Any]:
        """Unsent entries written before entries had a shard (an upgrade while some were unsent), oldest first.

        No shard index finds them, so they are asked for by ``sent`` alone (its single-field index, spread by
        document id: no hot range) and filtered here. The few unsent at any moment are mostly just committed and
        about to be published by their own request, so this reads at most ``limit`` small documents a sweep."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.client.collection(self.collection).where(filter=FieldFilter("sent", "==", False)).limit(limit)
        left = [s for s in query.stream() if "shard" not in (entry := s.to_dict()) and entry["created_at"] <= cutoff]
        return sorted(left, key=lambda s: s.get("created_at"))

    def _send(self, snapshot: Any) -> None:
        entry = snapshot.to_dict()
        message_id = self.send(
            entry["topic"],
            entry["data"].encode("utf-8"),
            dict(entry["attributes"]),
            ordering_key=entry.get("ordering_key"),
            timeout=self.publish_timeout,
        )
        self._mark_sent(snapshot.reference, message_id)

    @staticmethod
    def _mark_sent(ref: Any, message_id: str) -> None:
        now = datetime.now(UTC)
        ref.update({"sent": True, "sent_at": now, "message_id": message_id, "expires_at": now + SENT_RETENTION})
