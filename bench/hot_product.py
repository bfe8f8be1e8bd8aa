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
import json
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
from _common import REPO, client_env, machine, machine_line, percentile, write_json

PROBE = REPO / "bench" / "capacity_probe"
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
        with _stack(count) as (info, counts_dir):
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
    print(machine_line(host))
    print(f"{args.orders} orders for one SKU per run, {args.in_flight} in flight, {args.rounds} runs per shape, "
          f"sharded = {args.shards} shards; medians")  # fmt: skip
    print("\n| inventory | stock | confirmed orders/s | p50 to final ms | p99 to final ms | tx attempts / order | "
          "aborted commits / order |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for shape, runs in results.items():
        instances, stock = shape.split(", ")
        med = {key: sorted(run[key] for run in runs)[len(runs) // 2] for key in runs[0]}
        cells = [f"{med['confirmed_per_second']:.1f}", f"{med['p50_ms']:.0f}", f"{med['p99_ms']:.0f}",
                 f"{med['tx_attempts_per_order']:.2f}", f"{med['aborted_per_order']:.2f}"]  # fmt: skip
        print(f"| {instances} | {stock} | " + " | ".join(cells) + " |")
    path = write_json("hot_product", {"machine": host, "args": vars(args), "results": results})
    print(f"\nwritten to {path}")


class _stack:
    """A fresh local stack with ``count`` inventory instances, its services counted by the probe."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __enter__(self) -> tuple[dict[str, Any], Path]:
        from stack.ports import find_free_port_base
        from stack.runner import Stack
        from stack.topology import load_topology

        self.temp = Path(tempfile.mkdtemp(prefix="hot-", dir=REPO / ".local"))
        self.counts = self.temp / "counts"
        self.counts.mkdir()
        previous = os.environ.get("PYTHONPATH")
        os.environ["CAPACITY_COUNTS_DIR"] = str(self.counts)
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROBE), previous]))
        port_base = find_free_port_base(len(load_topology().services) + self.count + 4)
        self.runner = Stack(self.temp / "state", port_base=port_base, project="shop-bench",
                            instances={"inventory": self.count} if self.count > 1 else None)  # fmt: skip
        print(f"starting a stack with {self.count} inventory instance(s) ...", file=sys.stderr)
        try:
            self.runner.up()
        finally:
            os.environ.pop("PYTHONPATH") if previous is None else os.environ.update(PYTHONPATH=previous)
        info = json.loads((self.temp / "state" / "stack.json").read_text())
        os.environ.update(client_env(info))
        return info, self.counts

    def __exit__(self, *_: object) -> None:
        self.runner.down()
        shutil.rmtree(self.temp, ignore_errors=True)


def _inventory_counts(counts_dir: Path) -> Counter[str]:
    totals: Counter[str] = Counter()
    for path in counts_dir.glob("inventory-*.json"):
        totals.update(json.loads(path.read_text()))
    return totals


def _orders_for(
    info: dict[str, Any], sku: str, orders: int, in_flight: int, *, stock: int, shards: int = 1
) -> dict[str, float]:
    from google.cloud import firestore

    db = firestore.Client(project=info["project"])
    product = db.collection("products").document(sku)
    catalog = {"name": sku, "price": 1000, "currency": "EUR", "reserved": 0, "sold": 0}
    if shards > 1:
        product.set({**catalog, "available": 0, "stock_shards": shards})
        for index, part in enumerate(stock // shards + (1 if i < stock % shards else 0) for i in range(shards)):
            product.collection("stock_shards").document(str(index)).set({"available": part, "reserved": 0, "sold": 0})
    else:
        product.set({**catalog, "available": stock})
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
