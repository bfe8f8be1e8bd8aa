"""Benchmark: a flash sale, many orders for one product, with 1 and 3 instances of inventory, sharded and not.

    .venv/bin/python bench/hot_product.py [--orders 500] [--in-flight 32] [--shards 8] [--rounds 2]

For each inventory instance count (a fresh local stack each, ``--instances inventory=N``), the same number of
orders for one SKU whose stock is on its product document ("plain") and for one whose stock is in ``--shards``
shards ("sharded"), alternated round by round, ``--in-flight`` at once. Stock covers every order, so each should
confirm. Prints confirmed orders per second (first POST to last order final), p50/p99 from an order's creation to
its final state (the order document's ``created_at`` → ``updated_at``), and inventory's Firestore transaction
attempts and aborted commits per order (counted in its processes by bench/capacity_probe). Writes
``.local/bench/hot_product.json``. Figures only, never a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from _common import REPO, client_env, machine, machine_line, percentile, probe_counts, running_stack, write_json

PLAIN, SHARDED = "FLASH-PLAIN", "FLASH-SHARDED"
FINAL = ("CONFIRMED", "CANCELLED")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="each shape this many times, alternated")
    parser.add_argument("--instances", default="1,3", help="inventory instance counts, one stack each")
    args = parser.parse_args()
    host = machine()
    results: dict[str, list[dict[str, float]]] = {}
    for count in (int(n) for n in args.instances.split(",")):
        counts_dir = Path(tempfile.mkdtemp(prefix="hot-counts-", dir=REPO / ".local"))
        instances = {"inventory": count} if count > 1 else None
        with running_stack(None, instances=instances, counted_in=counts_dir) as info:
            os.environ.update(client_env(info))
            _orders_for(info, "WARM-UP", 40, 8, stock=10_000)  # the stack's first calls, unmeasured
            for round_ in range(args.rounds):
                for sku in (PLAIN, SHARDED) if round_ % 2 == 0 else (SHARDED, PLAIN):
                    shape = f"{count} instance{'s' if count > 1 else ''}, {'sharded' if sku == SHARDED else 'plain'}"
                    before = _inventory_counts(counts_dir)
                    figures = _orders_for(info, sku, args.orders, args.in_flight, stock=args.orders,
                                          shards=args.shards if sku == SHARDED else 1)  # fmt: skip
                    delta = _inventory_counts(counts_dir)
                    delta.subtract(before)
                    figures["tx_attempts_per_order"] = delta["firestore_tx_attempts"] / args.orders
                    figures["aborted_per_order"] = delta["firestore_aborted"] / args.orders
                    results.setdefault(shape, []).append(figures)
                    print(f"{shape}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()), file=sys.stderr)
        shutil.rmtree(counts_dir, ignore_errors=True)
    print(machine_line(host))
    print(f"{args.orders} orders for one SKU per run, {args.in_flight} in flight, {args.rounds} runs per shape, "
          f"sharded = {args.shards} shards; medians")  # fmt: skip
    print("\n| inventory | stock | confirmed orders/s | p50 to final ms | p99 to final ms | tx attempts / order | "
          "aborted commits / order |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for shape, runs in results.items():
        inventory, stock = shape.split(", ")
        med = {key: sorted(run[key] for run in runs)[len(runs) // 2] for key in runs[0]}
        cells = [f"{med['confirmed_per_second']:.1f}", f"{med['p50_ms']:.0f}", f"{med['p99_ms']:.0f}",
                 f"{med['tx_attempts_per_order']:.2f}", f"{med['aborted_per_order']:.2f}"]  # fmt: skip
        print(f"| {inventory} | {stock} | " + " | ".join(cells) + " |")
    path = write_json("hot_product", {"machine": host, "args": vars(args), "results": results})
    print(f"\nwritten to {path}")


def _inventory_counts(counts_dir: Path) -> Counter[str]:
    return probe_counts(counts_dir, "inventory").get("inventory", Counter())


def _orders_for(
    info: dict[str, Any], sku: str, orders: int, in_flight: int, *, stock: int, shards: int = 1
) -> dict[str, float]:
    from google.cloud import firestore

    from stack.seed import stock_writes

    db = firestore.Client(project=info["project"])
    product = {"sku": sku, "name": sku, "price": 1000, "currency": "EUR", "available": stock, "reserved": 0,
               "sold": 0, "stock_shards": shards}  # fmt: skip
    for path, fields in stock_writes(product):
        db.document(path).set(fields)
    api = info["services"]["orders"]
    body = {"customer_id": "flash", "email": "flash@example.com", "items": [{"sku": sku, "quantity": 1}],
            "payment_token": "tok_visa", "currency": "EUR"}  # fmt: skip

    def place(_: int) -> str:
        response = requests.post(f"{api}/orders", json=body, timeout=60)
        response.raise_for_status()
        return response.json()["order_id"]

    started = time.monotonic()
    with ThreadPoolExecutor(in_flight) as pool:
        order_ids = list(pool.map(place, range(orders)))
    deadline = time.monotonic() + 300
    docs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        refs = [db.collection("orders").document(order_id) for order_id in order_ids]
        docs = [snapshot.to_dict() or {} for snapshot in db.get_all(refs)]
        if all(doc.get("status") in FINAL for doc in docs):
            break
        time.sleep(0.2)
    elapsed = max(doc["updated_at"] for doc in docs).timestamp() - min(doc["created_at"] for doc in docs).timestamp()
    confirmed = sum(1 for doc in docs if doc.get("status") == "CONFIRMED")
    to_final = [(doc["updated_at"] - doc["created_at"]).total_seconds() * 1000 for doc in docs]
    return {
        "confirmed_per_second": confirmed / elapsed,
        "confirmed": confirmed,
        "p50_ms": percentile(to_final, 50),
        "p99_ms": percentile(to_final, 99),
        "wall_seconds": time.monotonic() - started,
    }


if __name__ == "__main__":
    main()
