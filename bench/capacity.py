"""Benchmark: what one order and one telemetry reading cost, measured on the local stack (docs/capacity.md).

    .venv/bin/python bench/capacity.py [--orders 300] [--concurrency 8] [--readings 20000]

Starts a fresh local stack whose service processes load bench/capacity_probe (a ``sitecustomize`` that counts every
Firestore and Pub/Sub call the generated clients make, and writes the totals per process), then:

1. orders: ``--warm-up`` orders unmeasured, then ``--orders`` orders (one MUG-1 each, ``tok_visa``), ``--concurrency``
   in flight, each followed to CONFIRMED and its mail; the counts and CPU after everything has settled;
2. telemetry: ``python -m stack simulate`` posts ``--readings`` unique readings (50 per request, no duplicates) and
   waits until analytics has them all.

For each it prints, per order or per reading and per service: Firestore documents read and written, transactions,
commits and queries; Pub/Sub publish calls, messages and bytes; push deliveries answered; service CPU ms (from
/proc). Writes ``.local/bench/capacity.json``. Figures only, never a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from _common import (
    REPO,
    client_env,
    cpu_seconds,
    machine,
    machine_line,
    probe_counts,
    process_group,
    running_stack,
    write_json,
)

ORDER_SERVICES = ("orders", "order-saga", "inventory", "payments", "notifications")
TELEMETRY_SERVICES = ("telemetry-ingest", "telemetry-analytics", "notifications")
ANSWERS = ('"message": "processed"', '"message": "duplicate"', '"message": "retry"', '"message": "rejected"')
QUIET_SECONDS = 3.0  # no count moved for this long: everything an order or reading set off is done
SKU = "MUG-1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--warm-up", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--readings", type=int, default=20000)
    args = parser.parse_args()

    counts_dir = Path(tempfile.mkdtemp(prefix="capacity-", dir=REPO / ".local"))
    host = machine()
    with running_stack(None, counted_in=counts_dir) as info:
        os.environ.update(client_env(info))
        _restock(info, args.warm_up + args.orders + 100)
        _orders(info, args.warm_up, args.concurrency)
        _settle(counts_dir)
        before = _snapshot(info, counts_dir)
        started = time.monotonic()
        _orders(info, args.orders, args.concurrency)
        orders_seconds = time.monotonic() - started
        _settle(counts_dir)
        after_orders = _snapshot(info, counts_dir)
        started = time.monotonic()
        _simulate(info, args.readings)
        readings_seconds = time.monotonic() - started
        _settle(counts_dir)
        after_readings = _snapshot(info, counts_dir)

    per_order = _per(after_orders, before, args.orders, ORDER_SERVICES)
    per_reading = _per(after_readings, after_orders, args.readings, TELEMETRY_SERVICES)
    print(machine_line(host))
    print(f"{args.orders} orders in {orders_seconds:.1f} s ({args.concurrency} in flight), {args.warm_up} before them")
    _print_table("per order", per_order)
    print(f"\n{args.readings} readings in {readings_seconds:.1f} s (50 per request, no duplicates)")
    _print_table("per reading", per_reading)
    path = write_json("capacity", {"machine": host, "per_order": per_order, "per_reading": per_reading,
                                   "orders": args.orders, "readings": args.readings})  # fmt: skip
    print(f"\nwritten to {path}")


def _restock(info: dict[str, Any], at_least: int) -> None:
    from google.cloud import firestore

    ref = firestore.Client(project=info["project"]).collection("products").document(SKU)
    ref.set({"available": at_least, "reserved": 0, "sold": 0}, merge=True)


def _orders(info: dict[str, Any], count: int, concurrency: int) -> None:
    api = info["services"]["orders"]
    body = {
        "customer_id": "capacity",
        "email": "capacity@example.com",
        "items": [{"sku": SKU, "quantity": 1}],
        "payment_token": "tok_visa",
        "currency": "EUR",
    }

    def one(_: int) -> str:
        response = requests.post(f"{api}/orders", json=body, timeout=60)
        response.raise_for_status()
        order_id = response.json()["order_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if requests.get(f"{api}/orders/{order_id}", timeout=10).json()["status"] in ("CONFIRMED", "CANCELLED"):
                return order_id
            time.sleep(0.05)
        raise SystemExit(f"order {order_id} was not final after 60 s")

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))


def _simulate(info: dict[str, Any], readings: int) -> None:
    state_dir = Path(info["logs"]).parent
    argv = [sys.executable, "-m", "stack", "simulate", "--state-dir", str(state_dir), "--devices", "50",
            "--readings", str(readings), "--duplicates", "0", "--shuffle", "0", "--wait"]  # fmt: skip
    subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def _settle(counts_dir: Path) -> None:
    """Until no process's counts have moved for QUIET_SECONDS (deliveries, marks, mails still under way)."""
    last, quiet_since = None, time.monotonic()
    while time.monotonic() - quiet_since < QUIET_SECONDS:
        now = sorted((p.name, p.read_text()) for p in counts_dir.glob("*.json"))
        if now != last:
            last, quiet_since = now, time.monotonic()
        time.sleep(0.25)


def _snapshot(info: dict[str, Any], counts_dir: Path) -> dict[str, Counter[str]]:
    """Per service: the probe's totals, CPU seconds and push deliveries answered, so far."""
    totals = probe_counts(counts_dir)
    logs = Path(info["logs"])
    pids = json.loads((logs.parent / "stack.json").read_text())["pids"]  # current: a restarted process has a new one
    for service in info["services"]:
        counter = totals.setdefault(service, Counter())
        groups = [pid for name, pid in pids.items() if name == service or name.startswith(f"{service}.")]
        counter["cpu_ms"] = round(sum(cpu_seconds(process_group(pid)) for pid in groups) * 1000)
        text = (logs / f"{service}.log").read_text(errors="replace")
        counter["deliveries"] = sum(text.count(answer) for answer in ANSWERS)
    return totals


def _per(after: dict[str, Counter[str]], before: dict[str, Counter[str]], n: int, services: tuple[str, ...]) -> dict:
    per: dict[str, dict[str, float]] = {}
    for service in services:
        delta = after.get(service, Counter()).copy()
        delta.subtract(before.get(service, Counter()))
        per[service] = {key: round(value / n, 3) for key, value in sorted(delta.items()) if value}
    total: Counter[str] = Counter()
    for values in per.values():
        total.update(values)
    per["all"] = {key: round(value, 3) for key, value in sorted(total.items())}
    return per


COLUMNS = [
    ("firestore_reads", "FS reads"),
    ("firestore_writes", "FS writes"),
    ("firestore_transactions", "FS tx"),
    ("firestore_commits", "FS commits"),
    ("firestore_queries", "FS queries"),
    ("pubsub_messages", "PS msgs"),
    ("pubsub_bytes", "PS bytes"),
    ("deliveries", "pushes in"),
    ("cpu_ms", "CPU ms"),
]


def _print_table(title: str, per: dict[str, dict[str, float]]) -> None:
    print(f"\n| {title} | " + " | ".join(label for _, label in COLUMNS) + " |")
    print("| --- |" + " ---: |" * len(COLUMNS))
    for service, values in per.items():
        cells = [f"{values.get(key, 0):g}" for key, _ in COLUMNS]
        print(f"| {service} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
