"""Benchmark: the dead-letter recorder's write under contention, as it was and as it is (docs/performance.md).

    .venv/bin/python bench/dead_letter_storm.py [--messages 10] [--deliveries 3] [--threads 4 8]

On a Firestore emulator of its own, ``--messages`` dead-letter messages of one event (so one record), each
delivered ``--deliveries`` times, are written from ``--threads`` threads at once, once per writer:

- ``library``: the transaction as the recorder ran it before, ``@firestore.transactional`` (the client library's
  5 attempts, retried at once), reproduced here for the comparison;
- ``eventkit``: ``deadletters.dead_letter_store.record`` as it is, ``eventkit.run_read_write`` (begun with its
  read, aborts retried with jittered backoff within 30 s).

Each writer gets its own event (its own record). Prints, per writer and thread count, the writes that committed
and those that failed (the recorder answers 503 for those and Pub/Sub delivers them again), and how long the storm
took. Writes ``.local/bench/dead_letter_storm.json``. Figures only, never a test.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from _common import machine, machine_line, write_json
from emulator_locks import firestore_emulator

from deadletters import dead_letter_store
from deadletters.dead_letter import KEPT_MESSAGE_IDS, DeadLetter, read_dead_letter
from eventkit.failures import FAILURES_COLLECTION, STATUS_NEW
from eventkit.waiting_counts import count_write

PROJECT = "dead-letter-storm"


def library_record(db: Any, dead_letter: DeadLetter, topic: str | None) -> str:
    """The recorder's write before it moved to eventkit.run_read_write: the same reads and writes."""
    from google.cloud import firestore

    ref = db.collection(FAILURES_COLLECTION).document(dead_letter.record_id)
    message_id = dead_letter.message.message_id

    @firestore.transactional
    def write(transaction: Any) -> str:
        snapshot = ref.get(transaction=transaction)
        now = datetime.now(UTC)
        if not snapshot.exists:
            document = dead_letter.to_document(now, topic)
            transaction.set(ref, document)
            count_write(transaction, db, None, document)
            return dead_letter_store.RECORDED
        before = snapshot.to_dict()
        seen = list(before.get("message_ids") or [])
        if message_id in seen:
            return dead_letter_store.DUPLICATE
        update = {
            "count": int(before.get("count") or 0) + 1, "status": STATUS_NEW, "last_seen": now,
            "message_id": message_id, "message_ids": [*seen, message_id][-KEPT_MESSAGE_IDS:],
            "delivery_attempt": dead_letter.delivery_count, "error": dead_letter.error(),
        }  # fmt: skip
        transaction.update(ref, update)
        count_write(transaction, db, before, {**before, **update})
        return dead_letter_store.DEAD_LETTERED_AGAIN

    return write(db.transaction())


WRITERS: dict[str, Callable[[Any, DeadLetter, str | None], str]] = {
    "library": library_record,
    "eventkit": dead_letter_store.record,
}


def dead_letter(event_id: str, message_id: str) -> DeadLetter:
    attributes = {"ce-id": event_id, "ce-type": "shop.test.v1", "CloudPubSubDeadLetterSourceSubscription": "sub"}
    message = {"messageId": message_id, "attributes": attributes, "data": base64.b64encode(b"{}").decode()}
    body = json.dumps({"message": message, "subscription": f"projects/{PROJECT}/subscriptions/deadletters-x"})
    return read_dead_letter(body.encode(), PROJECT)


def storm(db: Any, writer: str, threads: int, messages: int, deliveries: int) -> dict[str, Any]:
    letters = [dead_letter(f"evt-{writer}-{threads}", f"dl-{n}") for n in range(messages)]

    def deliver(letter: DeadLetter) -> str:
        try:
            return WRITERS[writer](db, letter, None)
        except Exception as exc:  # the recorder answers 503: Pub/Sub delivers it again
            return f"failed ({type(exc).__name__})"

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = Counter(pool.map(deliver, letters * deliveries))
    seconds = time.monotonic() - started
    failed = sum(n for outcome, n in outcomes.items() if outcome.startswith("failed"))
    return {"writer": writer, "threads": threads, "writes": messages * deliveries, "failed": failed,
            "seconds": round(seconds, 1), "outcomes": dict(outcomes)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10, help="dead-letter messages of the one event")
    parser.add_argument("--deliveries", type=int, default=3, help="deliveries of each to the recorder")
    parser.add_argument("--threads", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args()
    info = machine()
    print(machine_line(info))
    results = []
    with firestore_emulator() as (host, _):
        os.environ["FIRESTORE_EMULATOR_HOST"] = host
        from google.cloud import firestore

        db = firestore.Client(project=PROJECT)
        for threads in args.threads:
            for writer in WRITERS:
                figures = storm(db, writer, threads, args.messages, args.deliveries)
                results.append(figures)
                print(
                    f"{writer:9} {threads} threads: {figures['writes'] - figures['failed']:3} of {figures['writes']} "
                    f"writes committed, {figures['failed']:3} failed, in {figures['seconds']:5.1f} s"
                )
    write_json("dead_letter_storm", {"machine": info, "results": results})


if __name__ == "__main__":
    main()
