"""Benchmark: the order saga end to end on the local stack, time from ``POST /orders`` to ``CONFIRMED``.

    .venv/bin/python bench/saga.py [-n 50] [-c 5] [--warm-up 50] [--state-dir .local]

Each order (one ``MUG-1``, paid with ``tok_visa``) goes orders API → Firestore (order + outbox) → Pub/Sub push →
inventory and payments → order-saga → CONFIRMED, on a local stack (a fresh one in a temp dir unless
``--state-dir`` names a running one; MUG-1 is restocked first, so every order can confirm). ``--warm-up`` orders
go first, unmeasured (a fresh stack is slower over its first calls). ``-c`` orders are in flight at once; each is
followed with ``GET /orders/{id}`` every 25 ms, so times carry up to 25 ms of polling resolution. Prints
p50/p95/p99 of time to CONFIRMED, of the POST itself, and of each hop as the order's timeline records it (when
the saga applied the inventory and the payment outcome, from the order's creation), and the CPU each of the saga's
processes spent per measured order (from /proc; the orders API's includes answering the polls). Figures only, never
a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests
from _common import (
    client_env,
    cpu_seconds,
    machine,
    machine_line,
    percentile,
    process_group,
    running_stack,
    write_json,
)

POLL_SECONDS = 0.025
WAIT_SECONDS = 30.0
SKU = "MUG-1"
# Orders sent unmeasured before the measured ones. A fresh stack's first 50 orders ran at p50 740 ms, the next
# three runs of 50 at 459-482 ms (the emulators' and services' first calls; docs/performance.md).
WARM_UP = 50
# The processes an order goes through, whose CPU per order is reported (the stack's process groups).
SAGA_PROCESSES = ("orders", "inventory", "payments", "order-saga", "notifications", "firestore", "pubsub")
SETTLE_SECONDS = 2.0  # after the last CONFIRMED, for the deliveries still under way (notifications, "sent" marks)
HOPS = {"shop.inventory.": "created → inventory outcome applied", "shop.payment.": "created → payment outcome applied"}


def restock(info: dict, at_least: int) -> None:
    """Top up the SKU's available stock on the stack's Firestore emulator, so the run measures confirmations."""
    os.environ.update(client_env(info))
    from google.cloud import firestore

    ref = firestore.Client(project=info["project"]).collection("products").document(SKU)
    available = (ref.get().to_dict() or {}).get("available", 0)
    if available < at_least:
        ref.set({"available": at_least}, merge=True)


def hops(order: dict) -> dict[str, float]:
    """Milliseconds from the order's creation to each outcome the saga applied (the timeline's own clocks)."""
    timeline = order.get("timeline") or []
    if not timeline:
        return {}
    created = datetime.fromisoformat(timeline[0]["at"].replace("Z", "+00:00"))
    found = {}
    for entry in timeline[1:]:
        for prefix, label in HOPS.items():
            if entry["type"].startswith(prefix) and label not in found:
                at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
                found[label] = (at - created).total_seconds() * 1000
    return found


def cpu_by_process(stack: dict) -> dict[str, float]:
    return {name: cpu_seconds(process_group(stack["pids"][name])) for name in SAGA_PROCESSES if name in stack["pids"]}


def one_order(api: str, index: int) -> dict:
    session = requests.Session()
    body = {
        "customer_id": f"bench-{index}",
        "email": "bench@example.com",
        "items": [{"sku": SKU, "quantity": 1}],
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
        order = session.get(f"{api}/orders/{order_id}", timeout=10).json()
        if order["status"] != "PENDING":
            final = (time.perf_counter() - started) * 1000
            return {"status": order["status"], "post_ms": posted * 1000, "final_ms": final, "hops": hops(order)}
        time.sleep(POLL_SECONDS)
    return {"status": "PENDING (timed out)", "post_ms": posted * 1000, "final_ms": None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=50, help="orders (default 50)")
    parser.add_argument("-c", type=int, default=5, help="orders in flight at once (default 5)")
    parser.add_argument(
        "--warm-up",
        type=int,
        default=WARM_UP,
        help=f"orders sent unmeasured first, at the same concurrency (default {WARM_UP}; see WARM_UP)",
    )
    parser.add_argument("--state-dir", type=Path, help="a running stack's state dir (default: start one)")
    args = parser.parse_args()
    info = machine()
    with running_stack(args.state_dir) as stack:
        api = stack["services"]["orders"]
        restock(stack, args.warm_up + args.n + 1)
        one_order(api, -1)  # every service's first request builds its clients
        with ThreadPoolExecutor(args.c) as pool:
            if args.warm_up:
                warm = list(pool.map(lambda i: one_order(api, -2 - i), range(args.warm_up)))
                warm_confirmed = [r["final_ms"] for r in warm if r["status"] == "CONFIRMED"]
                p50 = f"{percentile(warm_confirmed, 50):.0f} ms" if warm_confirmed else "-"
                print(f"  (warm-up) {len(warm_confirmed)}/{args.warm_up} confirmed, p50 {p50}", file=sys.stderr)
            cpu_before = cpu_by_process(stack)
            started = time.perf_counter()
            results = list(pool.map(lambda i: one_order(api, i), range(args.n)))
        seconds = time.perf_counter() - started
        time.sleep(SETTLE_SECONDS)
        cpu_after = cpu_by_process(stack)
    cpu_ms = {name: round((cpu_after[name] - cpu_before[name]) * 1000 / args.n, 2) for name in cpu_before}

    outcomes = Counter(r["status"] for r in results)
    confirmed = [r["final_ms"] for r in results if r["status"] == "CONFIRMED"]
    posts = [r["post_ms"] for r in results]
    print(f"\n{args.n} orders, {args.c} in flight, {seconds:.1f} s in all; " + machine_line(info))
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()) + "\n")
    print("| measure | n | p50 ms | p95 ms | p99 ms | max ms | goal |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    summary = {}
    hop_rows = [
        (label, [r["hops"][label] for r in results if r["status"] == "CONFIRMED" and label in r.get("hops", {})], "")
        for label in HOPS.values()
    ]
    for label, values, goal in (
        ("POST /orders → CONFIRMED", confirmed, "p50 < 1000, p99 < 3000"),
        ("POST /orders (201)", posts, ""),
        *hop_rows,
    ):
        if not values:
            print(f"| {label} | 0 | - | - | - | - | {goal} |")
            continue
        row = {q: round(percentile(values, q), 1) for q in (50, 95, 99, 100)}
        summary[label] = {"n": len(values), **{f"p{q}": v for q, v in row.items()}}
        print(f"| {label} | {len(values)} | {row[50]:.0f} | {row[95]:.0f} | {row[99]:.0f} | {row[100]:.0f} | {goal} |")
    print("\nCPU per measured order (ms; user + system, from /proc):\n")
    print("| " + " | ".join(cpu_ms) + " |")
    print("|" + " ---: |" * len(cpu_ms))
    print("| " + " | ".join(f"{value:.2f}" for value in cpu_ms.values()) + " |")
    met = bool(confirmed) and percentile(confirmed, 50) < 1000 and percentile(confirmed, 99) < 3000
    print(f"\nsaga goal (p50 < 1 s, p99 < 3 s): {'met' if met else 'not met'}")
    write_json(
        "saga",
        {
            "machine": info,
            "n": args.n,
            "concurrency": args.c,
            "seconds": round(seconds, 2),
            "outcomes": outcomes,
            "summary": summary,
            "cpu_ms_per_order": cpu_ms,
            "goal_met": met,
            "raw": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
