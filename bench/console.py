"""Benchmark: how fast the console's pages answer with 10,000 orders and 1,000 dead letters in Firestore, in ms.

    .venv/bin/python bench/console.py [--orders 10000] [--records 1000] [--requests 200] [--state-dir .local]

Seeds, straight into Firestore (the emulator of a fresh local stack, unless ``--state-dir`` names a running one):

- ``--orders`` orders as the orders API writes them (one SKU line, 80 % CONFIRMED, 15 % CANCELLED, 5 % PENDING),
  placed over the last hour, and for each what its flow leaves: six ledger entries and six delivery notes
  (inventory and payments take OrderPlaced, the saga both outcomes, inventory and notifications OrderConfirmed),
  and the delivery counts the runtime would have written for them (the overview's "processed, last hour");
- ``--records`` failure records (dead letters of the topology's subscriptions, ~1 KB payloads, status ``new``),
  then counted as waiting by ``python -m dlq recount``'s code (the overview reads those counters).

Then asks each page ``--requests`` times, one request at a time, after 20 unmeasured: the overview, the orders
(first page, a page deep in one status), one order with its path, the failures (first page, a page deep) and one
record. Prints p50 / p95 / max and writes ``.local/bench/console.json``. On a running stack the seeded documents
are deleted at the end. Figures only, never a test.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import client_env, machine, machine_line, percentile, running_stack, write_json

WARM_UP = 20
BATCH = 400
RETAIN = timedelta(days=7)
# One confirmed order's deliveries: (consumer, event type, subscription, seconds after the order was placed).
FLOW = (
    ("inventory", "shop.order.placed.v1", "inventory-order-events", 0.30),
    ("payments", "shop.order.placed.v1", "payments-order-events", 0.35),
    ("order-saga", "shop.inventory.reserved.v1", "order-saga-order-events", 0.60),
    ("order-saga", "shop.payment.authorized.v1", "order-saga-order-events", 0.65),
    ("inventory", "shop.order.confirmed.v1", "inventory-order-events", 0.80),
    ("notifications", "shop.order.confirmed.v1", "notifications-order-events", 1.20),
)


def order_status(i: int) -> str:
    return "PENDING" if i % 20 == 0 else "CANCELLED" if i % 20 < 4 else "CONFIRMED"


def order_writes(db: Any, i: int, placed: datetime, project: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(document path, document) of order ``i``, its ledger entries and the notes of its deliveries."""
    from eventkit.delivery_note import DeliveryNote, delivery_record
    from eventkit.idempotency import IdempotencyRecord, ledger_document_id

    order_id, trace = f"bench-o-{i:05d}", f"{i:032x}"
    yield f"orders/{order_id}", {
        "order_id": order_id, "status": order_status(i), "reason": None, "customer_id": f"cust-{i % 97}",
        "email": f"c{i}@example.com", "items": [{"sku": "MUG-1", "quantity": 1 + i % 3, "unit_price": 1200}],
        "total": 1200 * (1 + i % 3), "currency": "EUR", "inventory": "RESERVED", "payment": "AUTHORIZED",
        "created_at": placed, "updated_at": placed + timedelta(seconds=0.7), "trace_id": trace,
        "timeline": [{"type": "shop.order.placed.v1", "at": placed, "event_id": f"bench-e-{i:05d}"}],
    }  # fmt: skip
    for n, (consumer, event_type, subscription, after) in enumerate(FLOW):
        key, at = f"bench-e-{i:05d}-{n}", placed + timedelta(seconds=after)
        entry_id = ledger_document_id(consumer, key)
        yield f"idempotency/{entry_id}", IdempotencyRecord.completed(consumer, key, "h", at, RETAIN).to_document()
        note = DeliveryNote(event_type, f"orders/{order_id}", trace, f"projects/{project}/subscriptions/{subscription}")
        ref, fields = delivery_record(db, note, consumer, entry_id, at, RETAIN)  # type: ignore[misc]
        yield ref.path, fields


def count_writes(orders: int, placed: list[datetime], project: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The delivery counts the runtime would have written for those orders' flows (delivery_counts.py)."""
    from collections import Counter

    from eventkit.delivery_counts import COUNTS_COLLECTION, RETENTION, count_id
    from eventkit.delivery_note import window_of

    sums: Counter[tuple[str, datetime]] = Counter()
    for at in placed:
        for _, _, subscription, after in FLOW:
            sums[(f"projects/{project}/subscriptions/{subscription}", window_of(at + timedelta(seconds=after)))] += 1
    for (path, window), count in sums.items():
        doc = {"subscription": path, "window": window, "count": count, "expires_at": window + RETENTION}
        yield f"{COUNTS_COLLECTION}/{count_id(path, window, 0)}", doc


def failure_writes(count: int, subscriptions: list[str], project: str) -> Iterator[tuple[str, dict[str, Any]]]:
    from eventkit.failures import FAILURES_COLLECTION, payload_fields

    start = datetime.now(UTC) - timedelta(minutes=count)
    for i in range(count):
        record_id = f"bench-{i:05d}"
        payload = json.dumps({"order_id": f"o-{i}", "items": [{"sku": f"sku-{j}", "quantity": 1} for j in range(20)]})
        yield f"{FAILURES_COLLECTION}/{record_id}", {
            "kind": "dead_letter", "status": "new",
            "subscription": f"projects/{project}/subscriptions/{subscriptions[i % len(subscriptions)]}",
            "topic": None, "attributes": {"ce-id": record_id, "ce-type": "shop.order.placed.v1"},
            "event_id": record_id, "event_type": "shop.order.placed.v1", "reason": "max_delivery_attempts",
            "delivery_attempt": 5, **payload_fields(payload.encode()), "replayable": True, "count": 1,
            "first_seen": start + timedelta(minutes=i), "last_seen": start + timedelta(minutes=i),
        }  # fmt: skip


def write_all(db: Any, writes: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    """Every (document path, document), in batches of BATCH committed four at a time; the paths written."""
    chunks: list[list[tuple[str, dict[str, Any]]]] = [[]]
    for write in writes:
        if len(chunks[-1]) == BATCH:
            chunks.append([])
        chunks[-1].append(write)

    def commit(chunk: list[tuple[str, dict[str, Any]]]) -> None:
        batch = db.batch()
        for path, document in chunk:
            batch.set(db.document(path), document)
        batch.commit()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(commit, chunks))
    return [path for chunk in chunks for path, _ in chunk]


def delete_all(db: Any, written: list[str]) -> None:
    def delete(chunk: list[str]) -> None:
        batch = db.batch()
        for path in chunk:
            batch.delete(db.document(path))
        batch.commit()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(delete, [written[i : i + BATCH] for i in range(0, len(written), BATCH)]))


def timed(session: Any, url: str, requests: int) -> list[float]:
    for _ in range(WARM_UP):
        assert session.get(url, timeout=30).status_code == 200, url
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        answer = session.get(url, timeout=30)
        times.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, (url, answer.status_code)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10000, help="orders seeded, with their flows (default 10000)")
    parser.add_argument("--records", type=int, default=1000, help="dead letters seeded (default 1000)")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per page (default 200)")
    parser.add_argument("--state-dir", type=Path, help="a running stack's state dir (default: start one)")
    args = parser.parse_args()
    info = machine()
    import requests
    from google.cloud import firestore

    from eventkit.failure_records import Records
    from stack.topology import load_topology

    topology = load_topology()
    bus = [n for n, s in topology.subscriptions.items() if not topology.topics[s.topic].dead_letter]
    with running_stack(args.state_dir) as stack:
        os.environ.update(client_env(stack))
        db = firestore.Client(project=stack["project"])
        project = stack["project"]
        now = datetime.now(UTC)
        spacing = timedelta(hours=1) / max(args.orders, 1)
        began = time.perf_counter()
        placed = [now - spacing * (args.orders - i) for i in range(args.orders)]
        written = write_all(db, (w for i in range(args.orders) for w in order_writes(db, i, placed[i], project)))
        if args.state_dir is None:  # a running stack's own counts stay as they are (reading them costs the same)
            written += write_all(db, count_writes(args.orders, placed, project))
        written += write_all(db, failure_writes(args.records, bus, project))
        Records(db).recount()  # what waits, counted as `python -m dlq recount` counts records written by hand
        seeded_in = time.perf_counter() - began
        console = stack["services"]["console"]
        session = requests.Session()
        cancelled = [i for i in range(args.orders) if order_status(i) == "CANCELLED"]
        pages = {"overview": f"{console}/"}
        if cancelled:  # --orders 0: the dead letters' pages alone, for comparison
            deep_order = f"bench-o-{cancelled[len(cancelled) // 2]:05d}"
            pages |= {
                "orders, first page": f"{console}/orders",
                "orders, a page deep": f"{console}/orders?status=CANCELLED&after={deep_order}",
                "one order": f"{console}/orders/bench-o-{args.orders // 2:05d}",
            }
        pages |= {
            "failures, first page": f"{console}/failures",
            "failures, a page deep": f"{console}/failures?status=new&after=bench-{args.records // 2:05d}",
            "one failure": f"{console}/failures/bench-00000",
        }
        try:
            rows = {name: timed(session, url, args.requests) for name, url in pages.items()}
        finally:
            if args.state_dir is not None:
                delete_all(db, written)
                Records(db).recount()
    print(machine_line(info))
    print(
        f"{args.orders} orders (with {len(FLOW) * args.orders} ledger entries and as many delivery notes) and "
        f"{args.records} dead letters in Firestore, seeded in {seeded_in:.0f} s; "
        f"{args.requests} requests per page, one at a time"
    )
    print("command: .venv/bin/python bench/console.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None) + "\n")  # fmt: skip
    print(f"{'page':<24} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    summary = {}
    for name, times in rows.items():
        summary[name] = {q: round(percentile(times, n), 1) for q, n in (("p50", 50), ("p95", 95), ("max", 100))}
        print(f"{name:<24} {summary[name]['p50']:>8} {summary[name]['p95']:>8} {summary[name]['max']:>8}")
    write_json("console", {"machine": info, "orders": args.orders, "records": args.records,
                           "requests": args.requests, "pages": summary})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
