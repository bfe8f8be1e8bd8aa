"""KeyedLocks: work naming the same documents runs one at a time; other work runs alongside; nothing accumulates."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from eventkit.keyed_locks import KeyedLocks


class Overlap:
    """Counts how many holders of a name are inside at once."""

    def __init__(self) -> None:
        self.inside: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.guard = threading.Lock()

    def enter(self, names: list[str]) -> None:
        with self.guard:
            for name in set(names):
                self.inside[name] = self.inside.get(name, 0) + 1
                self.most[name] = max(self.most.get(name, 0), self.inside[name])

    def leave(self, names: list[str]) -> None:
        with self.guard:
            for name in set(names):
                self.inside[name] -= 1


def test_holders_of_one_name_never_overlap_and_the_table_empties() -> None:
    locks, overlap = KeyedLocks(), Overlap()

    def work(names: list[str]) -> None:
        with locks.hold(names):
            overlap.enter(names)
            time.sleep(0.002)
            overlap.leave(names)

    # Overlapping sets in different orders (and a duplicate name): sorted acquisition must not deadlock.
    sets = [["products/A", "products/B"], ["products/B", "products/A"], ["products/B", "products/B"], ["products/A"]]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, sets * 10))

    assert overlap.most == {"products/A": 1, "products/B": 1}
    assert len(locks) == 0


def test_different_names_run_at_the_same_time() -> None:
    locks, both_inside = KeyedLocks(), threading.Barrier(2, timeout=5)

    def work(name: str) -> None:
        with locks.hold([name]):
            both_inside.wait()  # raises BrokenBarrierError if the second holder were kept out

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(work, ["orders/1", "orders/2"]))


def test_no_names_hold_nothing() -> None:
    locks = KeyedLocks()

    with locks.hold([]):
        assert len(locks) == 0
