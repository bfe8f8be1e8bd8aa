"""Sharded stock's pure decisions: which shards an order asks, how much it takes from each, how a restock spreads."""

from __future__ import annotations

from collections import Counter

from inventory.stock_shards import MAX_SHARDS, probe_order, shard_count, shard_path, take
from stack.seed import stock_writes


def test_an_order_asks_every_shard_once_starting_where_its_hash_says_the_same_every_time() -> None:
    ring = probe_order("order-1", "DROP-1", 8)

    assert sorted(ring) == list(range(8))
    assert ring == [(ring[0] + step) % 8 for step in range(8)]
    assert probe_order("order-1", "DROP-1", 8) == ring  # a retry or redelivery asks the same shard first


def test_orders_start_on_shards_spread_like_a_random_pick() -> None:
    starts = Counter(probe_order(f"order-{n}", "DROP-1", 8)[0] for n in range(8000))

    assert set(starts) == set(range(8))
    assert max(starts.values()) < 1.15 * min(starts.values())  # about 1000 each


def test_take_covers_the_quantity_moving_on_when_a_shard_runs_dry() -> None:
    assert take(3, [(5, 10), (6, 10)]) == ({5: 3}, 0)  # the first shard is enough: the next is not touched
    assert take(5, [(2, 2), (3, 0), (4, 2), (0, 9)]) == ({2: 2, 4: 2, 0: 1}, 0)
    assert take(5, [(1, 2), (2, 1)]) == ({1: 2, 2: 1}, 2)  # all of them are not enough: 2 uncovered
    assert take(2, [(1, -3), (2, 2)]) == ({2: 2}, 0)  # an operator's negative level gives nothing


def _spread(available: int, shards: int) -> list[int]:
    writes = stock_writes({"sku": "S", "available": available, "stock_shards": shards})
    assert writes[0] == ("products/S", {"sku": "S", "available": 0, "reserved": 0, "stock_shards": shards})
    assert [path for path, _ in writes[1:]] == [shard_path("S", index) for index in range(shards)]
    return [fields["available"] for _, fields in writes[1:]]


def test_seeded_stock_spreads_evenly_over_the_shards_and_loses_nothing() -> None:
    assert _spread(10, 4) == [3, 3, 2, 2]
    assert _spread(3, 8) == [1, 1, 1, 0, 0, 0, 0, 0]
    assert sum(_spread(1001, 7)) == 1001
    assert stock_writes({"sku": "S", "available": 5}) == [("products/S", {"sku": "S", "available": 5})]


def test_the_shard_count_comes_from_the_product_and_anything_odd_means_unsharded() -> None:
    assert shard_count({"stock_shards": 8}) == 8
    assert [shard_count(p) for p in (None, {}, {"stock_shards": 0}, {"stock_shards": "8"})] == [1, 1, 1, 1]
    assert shard_count({"stock_shards": MAX_SHARDS + 1}) == 1
    assert shard_path("DROP-1", 3) == "products/DROP-1/stock_shards/3"
