"""Reading and updating failure records (collection ``failures``, schema in :mod:`eventkit.failures`): what an
operator's tools do with them. ``python -m dlq`` (the CLI) and the ``console`` service (the browser) both use
this module and :mod:`eventkit.replay`, so there is one way to list, page, claim, replay and discard a record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventkit import waiting_counts
from eventkit.failures import (
    FAILURES_COLLECTION,
    KIND_DEAD_LETTER,
    KIND_PERMANENT_FAILURE,
    STATUS_NEW,
    STATUS_REPLAYED,
)
from eventkit.newest_first import CursorNotFound, newest_first_page

MIN_PREFIX = 6
# Fields a listing shows; a page of records does not fetch their payloads (up to 256 KiB each).
SUMMARY_FIELDS = (
    "kind", "status", "subscription", "consumer", "delivery_attempt", "count", "event_type", "event_id", "reason",
    "last_seen",
)  # fmt: skip


class RecordNotFound(Exception):
    pass


class NotNew(Exception):
    """The record is no longer ``new``: someone replayed or discarded it meanwhile."""


@dataclass(frozen=True)
class Filters:
    subscription: str | None = None  # an id or a full path
    since: datetime | None = None  # last_seen at or after
    status: str | None = None  # None: every status


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]  # summaries (SUMMARY_FIELDS and ``id``), most recent failure first
    next_after: str | None  # the id to pass as ``after`` for the next page; None on the last page


@dataclass(frozen=True)
class Waiting:
    total: int  # every record with status new
    by_subscription: dict[tuple[str, str], int]  # (subscription path, kind) -> records with status new


def matches_subscription(recorded: str | None, wanted: str) -> bool:
    if recorded is None:
        return False
    return recorded == wanted or recorded.endswith(f"/subscriptions/{wanted}")


def subscription_id(recorded: str | None) -> str | None:
    """``projects/p/subscriptions/s`` -> ``s``."""
    return recorded.rsplit("/", 1)[-1] if recorded else None


class Records:
    def __init__(self, db: Any, collection: str = FAILURES_COLLECTION) -> None:
        self.db = db
        self.collection = collection

    def list(self, filters: Filters) -> list[dict[str, Any]]:
        """Matching records, most recent failure first; each with its ``id``."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.db.collection(self.collection)
        if filters.status:
            query = query.where(filter=FieldFilter("status", "==", filters.status))
        found = [record for record in self._stream(query) if _kept(record, filters)]
        return sorted(found, key=lambda r: _time(r.get("last_seen")), reverse=True)

    def page(self, *, status: str | None = None, limit: int = 50, after: str | None = None) -> Page:
        """One page of records, most recent failure first (the composite index ``status`` + ``last_seen`` in
        terraform/firestore.tf serves it). ``after``: the last id of the page before."""
        try:
            records, next_after = newest_first_page(
                self.db.collection(self.collection), fields=SUMMARY_FIELDS, by="last_seen", status=status,
                limit=limit, after=after,
            )  # fmt: skip
        except CursorNotFound:
            raise RecordNotFound(f"no record {after!r} to continue the listing after") from None
        return Page(records=records, next_after=next_after)

    def waiting(self, subscriptions: Iterable[str]) -> Waiting:
        """Records still ``new``: per (subscription, kind) for the given subscription paths, and in all.

        Read from the counters every status change keeps (:mod:`eventkit.waiting_counts`): a few small documents,
        whatever the number of records (the Firestore emulator answers a count by reading the whole database).
        """
        counts = waiting_counts.read(self.db)
        keys = [(path, kind) for path in subscriptions for kind in (KIND_PERMANENT_FAILURE, KIND_DEAD_LETTER)]
        return Waiting(total=sum(counts.values()), by_subscription={key: counts.get(key, 0) for key in keys})

    def recount(self) -> dict[waiting_counts.Key, int]:
        """Count the records still ``new`` themselves and set the counters to match (``python -m dlq recount``):
        after an upgrade from a release without them, or a record changed by hand. Records that change while it
        runs may be miscounted: run it again when they are quiet."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        new = self.db.collection(self.collection).where(filter=FieldFilter("status", "==", STATUS_NEW))
        keys = (
            waiting_counts.waiting_key(s.to_dict()) for s in new.select(["status", "subscription", "kind"]).stream()
        )
        counts = Counter(key for key in keys if key is not None)
        waiting_counts.set_all(self.db, counts)
        return dict(counts)

    def get(self, record_id: str, *, prefix: bool = True) -> dict[str, Any]:
        """A record by its id, or (``prefix``: the CLI) by a unique prefix of at least MIN_PREFIX characters, as
        `list` shows it; finding a prefix reads the whole collection."""
        snapshot = self.db.collection(self.collection).document(record_id).get()
        if snapshot.exists:
            return {"id": snapshot.id, **snapshot.to_dict()}
        if not prefix:
            raise RecordNotFound(f"no record {record_id!r}")
        if len(record_id) < MIN_PREFIX:
            raise RecordNotFound(f"no record {record_id!r} (give the id, or at least {MIN_PREFIX} of its characters)")
        candidates = [r for r in self._stream(self.db.collection(self.collection)) if r["id"].startswith(record_id)]
        if len(candidates) != 1:
            what = "no record" if not candidates else f"{len(candidates)} records"
            raise RecordNotFound(f"{what} with an id starting {record_id!r}")
        return candidates[0]

    def claim(self, record_id: str, status: str) -> None:
        """Move a ``new`` record to ``status`` in one transaction, or raise :class:`NotNew`: of two operators (or
        two clicks) acting on one record at once, exactly one goes on."""
        at = "replay_claimed_at" if status == STATUS_REPLAYED else "discarded_at"

        def change(record: dict[str, Any]) -> dict[str, Any]:
            current = record.get("status")
            if current != STATUS_NEW:
                raise NotNew(f"record {record_id} is {current} already")
            return {"status": status, at: datetime.now(UTC)}

        self._change(record_id, change, f"claim failure record {record_id}")

    def release(self, record_id: str) -> None:
        """Undo :meth:`claim` (the replay could not be sent): the record is ``new`` again."""
        self._change(record_id, lambda _: {"status": STATUS_NEW}, f"release failure record {record_id}")

    def mark_replayed(self, record_id: str, message_id: str) -> None:
        from google.cloud import firestore

        def change(_: dict[str, Any]) -> dict[str, Any]:
            return {
                "status": STATUS_REPLAYED,
                "replayed_at": datetime.now(UTC),
                "replays": firestore.Increment(1),
                "replay_message_ids": firestore.ArrayUnion([message_id]),
            }

        self._change(record_id, change, f"mark failure record {record_id} replayed")

    def _change(self, record_id: str, change: Callable[[dict[str, Any]], dict[str, Any]], what: str) -> None:
        """Update a record with ``change(record)`` in a transaction, and its waiting counter with it."""
        from eventkit.transactions import run_read_write

        ref = self.db.collection(self.collection).document(record_id)

        def body(transaction: Any, snapshots: list[Any]) -> None:
            (snapshot,) = snapshots
            if not snapshot.exists:
                raise RecordNotFound(f"no record {record_id!r}")
            record = snapshot.to_dict()
            update = change(record)
            transaction.update(ref, update)
            waiting_counts.count_write(transaction, self.db, record, {**record, **update})

        run_read_write(self.db, [ref], body, what)

    def of_subject(self, subject: str, limit: int = 50) -> list[dict[str, Any]]:
        """Summaries of the records whose message carried the CloudEvent ``subject`` (e.g. ``orders/<id>``: every
        event of one order's flow), most recent failure first; at most ``limit`` + 1, so a caller can tell there
        were more. One equality filter on a map subfield, which Firestore indexes by itself: no composite index.
        Without an order in the query, a cut list is the first records by id, not the newest. Records of
        deliveries that could not be read may hold no attributes: they are not found here."""
        from google.cloud.firestore_v1.base_query import FieldFilter
        from google.cloud.firestore_v1.field_path import FieldPath

        # Binary-mode CloudEvents over Pub/Sub carry the subject as this attribute (eventkit.events.encode_for_pubsub).
        subject_field = FieldPath("attributes", "ce-subject").to_api_repr()
        query = (
            self.db.collection(self.collection)
            .where(filter=FieldFilter(subject_field, "==", subject))
            .select(list(SUMMARY_FIELDS))
            .limit(limit + 1)
        )
        return sorted(self._stream(query), key=lambda r: _time(r.get("last_seen")), reverse=True)

    @staticmethod
    def _stream(query: Any) -> Iterator[dict[str, Any]]:
        for snapshot in query.stream():
            yield {"id": snapshot.id, **snapshot.to_dict()}


def _kept(record: dict[str, Any], filters: Filters) -> bool:
    if filters.subscription and not matches_subscription(record.get("subscription"), filters.subscription):
        return False
    return not (filters.since and _time(record.get("last_seen")) < filters.since)


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.min.replace(tzinfo=UTC)
