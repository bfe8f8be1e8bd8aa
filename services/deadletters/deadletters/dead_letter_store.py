"""Storing dead letters: one record per message, whatever the number of (re)deliveries to the recorder.

The record lives beside the consumers' own permanent-failure records (eventkit.failures, collection
``failures``). Written in a transaction that reads the record first:

- no record: create it (status ``new``);
- a record that already lists this dead-letter message id: a redelivery to the recorder, change nothing;
- a record for the same event but another dead-letter message: the event was dead-lettered again (e.g. a
  replay failed once more): count it and set the status back to ``new``.

Each write counts the record as waiting in the same transaction (eventkit.waiting_counts), from the status read.
The transaction begins with its read and retries aborts with jittered backoff (eventkit.transactions), as the
consumers' own failure records do.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from typing import Any

from deadletters.dead_letter import KEPT_MESSAGE_IDS, DeadLetter
from eventkit import run_read_write
from eventkit.failures import FAILURES_COLLECTION, STATUS_NEW
from eventkit.waiting_counts import count_write

log = logging.getLogger("deadletters.store")

RECORDED, DUPLICATE, DEAD_LETTERED_AGAIN = "recorded", "duplicate", "dead_lettered_again"


def record(db: Any, dead_letter: DeadLetter, topic: str | None) -> str:
    """Write the record, or see that it is there already; what happened (RECORDED, DUPLICATE, DEAD_LETTERED_AGAIN).

    Contention (a storm of dead letters of one event) is retried with jittered backoff (eventkit.transactions);
    past the budget it raises RetryableError, and the recorder answers 503."""
    ref = db.collection(FAILURES_COLLECTION).document(dead_letter.record_id)
    message_id = dead_letter.message.message_id

    def write(transaction: Any, snapshots: list[Any]) -> str:
        (snapshot,) = snapshots
        now = datetime.now(UTC)
        if not snapshot.exists:
            document = dead_letter.to_document(now, topic)
            transaction.set(ref, document)
            count_write(transaction, db, None, document)
            return RECORDED
        before = snapshot.to_dict()
        seen = list(before.get("message_ids") or [])
        if message_id in seen:
            return DUPLICATE
        update = {
            "count": int(before.get("count") or 0) + 1,
            "status": STATUS_NEW,
            "last_seen": now,
            "message_id": message_id,
            "message_ids": [*seen, message_id][-KEPT_MESSAGE_IDS:],
            "delivery_attempt": dead_letter.delivery_count,
            "error": dead_letter.error(),
        }
        transaction.update(ref, update)
        count_write(transaction, db, before, {**before, **update})
        return DEAD_LETTERED_AGAIN

    return run_read_write(db, [ref], write, f"record dead letter {dead_letter.record_id}")


@functools.cache
def _subscriber() -> Any:
    from google.cloud import pubsub_v1

    return pubsub_v1.SubscriberClient()


@functools.lru_cache(maxsize=256)
def source_topic(subscription_path: str | None) -> str | None:
    """The topic a subscription reads (needs pubsub.subscriptions.get); None if it cannot be looked up.

    Not knowing it is not fatal: ``dlq replay`` looks it up again with the operator's credentials.
    """
    if subscription_path is None:
        return None
    try:
        return str(_subscriber().get_subscription(request={"subscription": subscription_path}, timeout=10).topic)
    except Exception as exc:  # permission, deleted subscription, outage: record without it
        log.warning(
            "could not look up the source subscription's topic",
            extra={"fields": {"subscription": subscription_path, "error": str(exc)}},
        )
        return None
