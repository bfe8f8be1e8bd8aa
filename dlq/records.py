"""Reading and updating failure records (collection ``failures``, schema in eventkit/failures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventkit.failures import FAILURES_COLLECTION, STATUS_DISCARDED, STATUS_REPLAYED

MIN_PREFIX = 6


class RecordNotFound(Exception):
    pass


@dataclass(frozen=True)
class Filters:
    subscription: str | None = None  # an id or a full path
    since: datetime | None = None  # last_seen at or after
    status: str | None = None  # None: every status


def matches_subscription(recorded: str | None, wanted: str) -> bool:
    if recorded is None:
        return False
    return recorded == wanted or recorded.endswith(f"/subscriptions/{wanted}")


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

    def get(self, record_id: str) -> dict[str, Any]:
        """A record by its id, or by a unique prefix of at least MIN_PREFIX characters (as `list` shows it)."""
        snapshot = self.db.collection(self.collection).document(record_id).get()
        if snapshot.exists:
            return {"id": snapshot.id, **snapshot.to_dict()}
        if len(record_id) < MIN_PREFIX:
            raise RecordNotFound(f"no record {record_id!r} (give the id, or at least {MIN_PREFIX} of its characters)")
        candidates = [r for r in self._stream(self.db.collection(self.collection)) if r["id"].startswith(record_id)]
        if len(candidates) != 1:
            what = "no record" if not candidates else f"{len(candidates)} records"
            raise RecordNotFound(f"{what} with an id starting {record_id!r}")
        return candidates[0]

    def mark_replayed(self, record_id: str, message_id: str) -> None:
        from google.cloud import firestore

        self.db.collection(self.collection).document(record_id).update(
            {
                "status": STATUS_REPLAYED,
                "replayed_at": datetime.now(UTC),
                "replays": firestore.Increment(1),
                "replay_message_ids": firestore.ArrayUnion([message_id]),
            }
        )

    def mark_discarded(self, record_id: str) -> None:
        self.db.collection(self.collection).document(record_id).update(
            {"status": STATUS_DISCARDED, "discarded_at": datetime.now(UTC)}
        )

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
