"""Process-local locks by name: work on the same documents queues in this instance instead of colliding in Firestore.

Two Firestore transactions that read a document and then write it lock each other out; one waits for the
other's lock to time out (the emulator) or is aborted and retried (production). Inside one instance that
collision is avoidable: deliveries that will write the same document take its lock here first and run one after
the other (figures: docs/performance.md). The consumer takes a delivery's locks once, its ledger key with them.
Instances still contend with each other; Firestore's transactions keep that correct.

Locks are created on demand and dropped when nobody holds or waits for them. Several names are taken in sorted
order, so two holders of overlapping sets cannot deadlock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[threading.Lock, int]] = {}
        self._guard = threading.Lock()

    @contextlib.contextmanager
    def hold(self, names: Iterable[str]) -> Iterator[None]:
        """Hold the lock of every name (duplicates ignored) for the ``with`` block."""
        with contextlib.ExitStack() as stack:
            for name in sorted(set(names)):
                stack.enter_context(self._one(name))
            yield

    @contextlib.contextmanager
    def _one(self, name: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(name, (threading.Lock(), 0))
            self._locks[name] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[name]
                if users == 1:
                    del self._locks[name]
                else:
                    self._locks[name] = (lock, users - 1)

    def __len__(self) -> int:
        """Names currently held or waited for (0 when idle: nothing accumulates)."""
        with self._guard:
            return len(self._locks)
