"""Benchmark: how fast the console's pages answer with 1,000 dead letters in Firestore, in ms per page.

    .venv/bin/python bench/console.py [--records 1000] [--requests 200] [--state-dir .local]

Seeds ``--records`` failure records (dead letters of the topology's subscriptions, ~1 KB payloads, a minute apart;
status ``new``), then asks each page ``--requests`` times, one request at a time, after 20 unmeasured: the overview
(counts what waits per subscription), the first page of the list, a page deep in it (after a cursor) and one record.
A fresh local stack unless ``--state-dir`` names a running one (its ``failures`` collection gets the records, under
ids ``bench-*``, deleted at the end). Prints p50 / p95 / max and writes ``.local/bench/console.json``. Figures only,
never a test. (The issue's target, < 200 ms at p95, is stated with 10,000 orders too; the orders page does not exist
yet, and orders are not read by these pages.)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import client_env, machine, machine_line, percentile, running_stack, write_json

WARM_UP = 20


def seed(db: Any, count: int, subscriptions: list[str], project: str) -> list[str]:
    from eventkit.failures import FAILURES_COLLECTION, payload_fields

    start = datetime.now(UTC) - timedelta(minutes=count)
    ids = []
    batch = db.batch()
    for i in range(count):
        record_id = f"bench-{i:05d}"
        payload = json.dumps({"order_id": f"o-{i}", "items": [{"sku": f"sku-{j}", "quantity": 1} for j in range(20)]})
        subscription = subscriptions[i % len(subscriptions)]
        batch.set(
            db.collection(FAILURES_COLLECTION).document(record_id),
            {
                "kind": "dead_letter",
                "status": "new",
                "subscription": f"projects/{project}/subscriptions/{subscription}",
                "topic": None,
                "attributes": {"ce-id": record_id, "ce-type": "shop.order.placed.v1"},
                "event_id": record_id,
                "event_type": "shop.order.placed.v1",
                "reason": "max_delivery_attempts",
                "delivery_attempt": 5,
                **payload_fields(payload.encode()),
                "replayable": True,
                "count": 1,
                "first_seen": start + timedelta(minutes=i),
                "last_seen": start + timedelta(minutes=i),
            },
        )
        ids.append(record_id)
        if len(ids) % 400 == 0:
            batch.commit()
            batch = db.batch()
    batch.commit()
    return ids


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
    parser.add_argument("--records", type=int, default=1000, help="dead letters seeded (default 1000)")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per page (default 200)")
    parser.add_argument("--state-dir", type=Path, help="a running stack's state dir (default: start one)")
    args = parser.parse_args()
    info = machine()
    import requests
    from google.cloud import firestore

    from stack.topology import load_topology

    topology = load_topology()
    bus = [n for n, s in topology.subscriptions.items() if not topology.topics[s.topic].dead_letter]
    with running_stack(args.state_dir) as stack:
        os.environ.update(client_env(stack))
        db = firestore.Client(project=stack["project"])
        ids = seed(db, args.records, bus, stack["project"])
        console = stack["services"]["console"]
        session = requests.Session()
        deep = ids[len(ids) // 2]
        pages = {
            "overview": f"{console}/",
            "list, first page": f"{console}/failures",
            "list, a page deep": f"{console}/failures?status=new&after={deep}",
            "one record": f"{console}/failures/{ids[0]}",
        }
        try:
            rows = {name: timed(session, url, args.requests) for name, url in pages.items()}
        finally:
            for start in range(0, len(ids), 400):
                batch = db.batch()
                for record_id in ids[start : start + 400]:
                    batch.delete(db.collection("failures").document(record_id))
                batch.commit()
    print(machine_line(info))
    print(f"{args.records} dead letters in Firestore; {args.requests} requests per page, one at a time\n")
    print(f"{'page':<20} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    summary = {}
    for name, times in rows.items():
        summary[name] = {q: round(percentile(times, n), 1) for q, n in (("p50", 50), ("p95", 95), ("max", 100))}
        print(f"{name:<20} {summary[name]['p50']:>8} {summary[name]['p95']:>8} {summary[name]['max']:>8}")
    write_json("console", {"machine": info, "records": args.records, "requests": args.requests, "pages": summary})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
