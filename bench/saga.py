"""Benchmark: the order saga end to end on the local stack, time from ``POST /orders`` to ``CONFIRMED``.

    .venv/bin/python bench/saga.py [-n 50] [-c 5] [--state-dir .local]

Each order (one ``MUG-1``, paid with ``tok_visa``) goes orders API → Firestore (order + outbox) → Pub/Sub push →
inventory and payments → order-saga → CONFIRMED, on a local stack (a fresh one in a temp dir unless
``--state-dir`` names a running one; a fresh stack's seed has 100 MUG-1, so at most 100 orders confirm). ``-c``
orders are in flight at once; each is followed with ``GET /orders/{id}`` every 25 ms, so times carry up to 25 ms
of polling resolution. Prints p50/p95/p99 of time to CONFIRMED and of the POST itself. Figures only, never a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, machine_line, percentile, running_stack, write_json

POLL_SECONDS = 0.025
WAIT_SECONDS = 30.0


def one_order(api: str, index: int) -> dict:
    session = requests.Session()
    body = {
        "customer_id": f"bench-{index}",
        "email": "bench@example.com",
        "items": [{"sku": "MUG-1", "quantity": 1}],
        "payment_token": "tok_visa",
        "currency": "EUR",
    }
    started = time.perf_counter()
    response = session.post(f"{api}/orders", json=body, timeout=30)
    posted = time.perf_counter() - started
    if response.status_code != 201:
        return {"status": f"POST {response.status_code}", "post_ms": posted * 1000, "final_ms": None}
    order_id = response.json()["order_id"]
    while time.perf_counter() - started < WAIT_SECONDS:
        status = session.get(f"{api}/orders/{order_id}", timeout=10).json()["status"]
        if status != "PENDING":
            return {"status": status, "post_ms": posted * 1000, "final_ms": (time.perf_counter() - started) * 1000}
        time.sleep(POLL_SECONDS)
    return {"status": "PENDING (timed out)", "post_ms": posted * 1000, "final_ms": None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=50, help="orders (default 50)")
    parser.add_argument("-c", type=int, default=5, help="orders in flight at once (default 5)")
    parser.add_argument("--state-dir", type=Path, help="a running stack's state dir (default: start one)")
    args = parser.parse_args()
    info = machine()
    with running_stack(args.state_dir) as stack:
        api = stack["services"]["orders"]
        one_order(api, -1)  # warm-up: every service's first request builds its clients
        started = time.perf_counter()
        with ThreadPoolExecutor(args.c) as pool:
            results = list(pool.map(lambda i: one_order(api, i), range(args.n)))
        seconds = time.perf_counter() - started

    outcomes = Counter(r["status"] for r in results)
    confirmed = [r["final_ms"] for r in results if r["status"] == "CONFIRMED"]
    posts = [r["post_ms"] for r in results]
    print(f"\n{args.n} orders, {args.c} in flight, {seconds:.1f} s in all; " + machine_line(info))
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()) + "\n")
    print("| measure | n | p50 ms | p95 ms | p99 ms | max ms | goal |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    summary = {}
    for label, values, goal in (
        ("POST /orders → CONFIRMED", confirmed, "p50 < 1000, p99 < 3000"),
        ("POST /orders (201)", posts, ""),
    ):
        if not values:
            print(f"| {label} | 0 | - | - | - | - | {goal} |")
            continue
        row = {q: round(percentile(values, q), 1) for q in (50, 95, 99, 100)}
        summary[label] = {"n": len(values), **{f"p{q}": v for q, v in row.items()}}
        print(f"| {label} | {len(values)} | {row[50]:.0f} | {row[95]:.0f} | {row[99]:.0f} | {row[100]:.0f} | {goal} |")
    met = bool(confirmed) and percentile(confirmed, 50) < 1000 and percentile(confirmed, 99) < 3000
    print(f"\nsaga goal (p50 < 1 s, p99 < 3 s): {'met' if met else 'not met'}")
    command = " ".join([".venv/bin/python", "bench/saga.py", *sys.argv[1:]])
    path = write_json(
        "saga",
        {
            "machine": info,
            "n": args.n,
            "concurrency": args.c,
            "seconds": round(seconds, 2),
            "outcomes": outcomes,
            "summary": summary,
            "goal_met": met,
            "raw": results,
            "command": command,
        },
    )
    print(f"\nJSON: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
