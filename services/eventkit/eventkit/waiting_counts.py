"""Failure records waiting for an operator (status ``new``), counted per subscription and kind: what the console's
overview shows, read by listing a few small documents instead of counting the records.

    failures_waiting/{hash of subscription and kind}-{shard}
        subscription (full path, or None), kind, count

Every change of a record's status is counted in the transaction that makes it, from the status it read there:
a record that becomes ``new`` adds one, one that stops being ``new`` takes one away, anything else adds nothing
(:func:`count_write`). The writers are eventkit's failure recorder, the deadletters service's recorder and the
operator's claims and replays (:mod:`eventkit.failure_records`). A counter is only ever incremented, never read
in those transactions, so it takes no read lock and a storm of failures does not queue its recorders behind one
document; the increments of one (subscription, kind) are spread over :data:`SHARDS` documents as well.

A record changed by anything else (deleted by hand, written by a release before these counters) is not counted:
``python -m dlq recount`` counts the records themselves and sets the counters to match (:func:`set_all`).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Mapping
from typing import Any

from eventkit.failures import STATUS_NEW

WAITING_COLLECTION = "failures_waiting"
SHARDS = 8
BATCH = 500  # writes in one Firestore batch, at most

Key = tuple[str | None, str]  # (subscription path or None, kind)


def count_write(writer: Any, db: Any, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> None:
    """Count one write of a record with ``writer`` (a transaction or a batch), so the counters commit with it.

    ``before``: the record as the transaction read it (None: there was none); ``after``: the record as written
    (at least its ``subscription``, ``kind`` and ``status``). A record that stays ``new`` under the same
    subscription and kind writes no counter at all.
    """
    was = waiting_key(before)
    now = waiting_key(after)
    if was == now:
        return
    if was is not None:
        _add(writer, db, was, -1)
    if now is not None:
        _add(writer, db, now, 1)


def read(db: Any) -> dict[Key, int]:
    """Every counter, its shards added up. A counter below zero (a record changed behind the counters' back) reads
    as 0 until ``dlq recount``."""
    sums: Counter[Key] = Counter()
    for snapshot in db.collection(WAITING_COLLECTION).stream():
        counter = snapshot.to_dict()
        sums[(counter.get("subscription"), str(counter.get("kind")))] += int(counter.get("count") or 0)
    return {key: max(0, count) for key, count in sums.items()}


def set_all(db: Any, counts: Mapping[Key, int]) -> None:
    """Replace every counter by ``counts`` (the records counted by ``dlq recount``)."""
    counters = db.collection(WAITING_COLLECTION)
    fresh = {
        f"{_key_id(subscription, kind)}-0": {"subscription": subscription, "kind": kind, "count": count}
        for (subscription, kind), count in counts.items()
        if count
    }
    stale = [snapshot.id for snapshot in counters.stream() if snapshot.id not in fresh]
    writes = [(doc_id, None) for doc_id in stale] + list(fresh.items())
    for start in range(0, len(writes), BATCH):
        batch = db.batch()
        for doc_id, counter in writes[start : start + BATCH]:
            if counter is None:
                batch.delete(counters.document(doc_id))
            else:
                batch.set(counters.document(doc_id), counter)
        batch.commit()


def waiting_key(record: Mapping[str, Any] | None) -> Key | None:
    """The counter a record counts on, or None if it is not waiting (no record, or a status other than ``new``)."""
    if record is None or record.get("status") != STATUS_NEW:
        return None
    return record.get("subscription"), str(record.get("kind"))


def _add(writer: Any, db: Any, key: Key, delta: int) -> None:
    from google.cloud import firestore

    subscription, kind = key
    writer.set(
        db.collection(WAITING_COLLECTION).document(f"{_key_id(subscription, kind)}-{random.randrange(SHARDS)}"),
        {"subscription": subscription, "kind": kind, "count": firestore.Increment(delta)},
        merge=True,
    )


def _key_id(subscription: str | None, kind: str) -> str:
    # A hash, not the names: a forged push body chooses the subscription a permanent failure is recorded under,
    # and not every string is a valid document id.
    return hashlib.sha256(f"{subscription or ''}\0{kind}".encode()).hexdigest()[:24]
