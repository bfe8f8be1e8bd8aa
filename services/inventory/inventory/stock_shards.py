"""Sharded stock, pure: which shards an order asks first, and how much it takes from each.

A product with ``stock_shards: N`` (N ≥ 2) on its document keeps its stock not on that document but in N
documents ``products/{sku}/stock_shards/{0..N-1}``, each with its own ``available``, ``reserved`` and ``sold``.
Firestore sustains about one write a second on one document; a flash sale puts every order's reservation on the
same product, so its stock is split where many instances can reserve at once, each order on a shard of its own.

- An order asks its shards in a ring starting at one picked by a hash of (order, SKU): spread like a random
  pick, and the same on every retry and redelivery of that order (which serializes on that first shard).
- It takes what each shard has until its quantity is covered, moving on to the next shard when one runs dry;
  only if all of them together cannot cover it is the order out of stock.
- A release gives each shard back what was taken from it; a sale moves it from ``reserved`` to ``sold`` there.

The product's total is the sum over its shards (the orders API reports it). Without ``stock_shards`` (or with 1)
the stock stays on the product document, as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

SHARDS_FIELD = "stock_shards"  # on products/{sku}: how many shards its stock is split into
SHARDS_COLLECTION = "stock_shards"  # products/{sku}/stock_shards/{index}
MAX_SHARDS = 100


def shard_count(product: Mapping[str, Any] | None) -> int:
    """The product's shards; 1 (stock on the product document) when it names none or a value out of range."""
    value = (product or {}).get(SHARDS_FIELD, 1)
    return value if isinstance(value, int) and 1 <= value <= MAX_SHARDS else 1


def shard_path(sku: str, index: int) -> str:
    return f"products/{sku}/{SHARDS_COLLECTION}/{index}"


def probe_order(order_id: str, sku: str, shards: int) -> list[int]:
    """The shards an order asks, in order: a ring from a start picked by hash of (order, SKU)."""
    start = int.from_bytes(hashlib.sha256(f"{order_id}\0{sku}".encode()).digest()[:8], "big") % shards
    return [(start + step) % shards for step in range(shards)]


def take(wanted: int, available: Iterable[tuple[int, int]]) -> tuple[dict[int, int], int]:
    """From (shard, available) pairs in probe order: what to take from each to cover ``wanted``, and how much of
    it is left uncovered (0 when covered). Stops at the first pair it does not need."""
    taken: dict[int, int] = {}
    remaining = wanted
    for shard, on_hand in available:
        if remaining == 0:
            break
        part = min(max(on_hand, 0), remaining)
        if part:
            taken[shard] = part
            remaining -= part
    return taken, remaining
