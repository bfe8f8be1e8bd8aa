"""Benchmark: why several instances of inventory collapse on the Firestore emulator (docs/orders.md).

    .venv/bin/python bench/emulator_locks.py [--transactions 20] [--shards 8]

On a Firestore emulator of its own, separate processes (as separate Cloud Run instances are) each run
``--transactions`` read-then-write transactions, the shape of a stock reservation, from ``--threads`` threads
(concurrent deliveries), each on a random one of the documents its layout writes. As eventkit's ``serialize_on``
does, a process queues its own transactions per document, so they never meet each other in Firestore, only the
other processes'. Layouts:

- 1, 2 and 3 processes on one document (a hot product with one instance, and with several);
- 3 processes each on a document of its own (no contention: the control);
- 1 and 3 processes on ``--shards`` documents (sharded stock);
- 3 processes reading one shared document that nobody writes, each writing its own (the product document that
  every reservation reads for its shard count).

Prints transactions per second, attempts per transaction, the slowest transaction, and the emulator's
"Transaction lock timeout" count for each. Writes ``.local/bench/emulator_locks.json``. Figures only, never a test.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from _common import free_port, machine, machine_line, write_json

from stack.emulators import firestore_command, locate_emulators

PROJECT = "emulator-locks"
LOCK_TIMEOUT = "Transaction lock timeout"


@dataclass(frozen=True)
class Layout:
    name: str
    processes: int
    written: str  # "one", "own" (a document per process) or "shards"
    shared_read: bool = False
    threaded: bool = True  # --threads concurrent transactions per process (queued per document), or one


@dataclass(frozen=True)
class Figures:
    layout: str
    transactions: int
    per_second: float
    attempts_per_transaction: float
    slowest_seconds: float
    lock_timeouts: int


LAYOUTS = (
    Layout("1 process, one document", 1, "one"),
    Layout("2 processes, one document", 2, "one"),
    Layout("3 processes, one document", 3, "one"),
    Layout("3 processes, own documents", 3, "own"),
    Layout("1 process, shards", 1, "shards"),
    Layout("3 processes, shards", 3, "shards"),
    Layout("3 processes, shards, one at a time", 3, "shards", threaded=False),
    Layout("3 processes, shared read, own writes", 3, "own", shared_read=True),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=40, help="per process and layout")
    parser.add_argument("--threads", type=int, default=8, help="concurrent transactions per process")
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    info = machine()
    print(machine_line(info))
    results: list[Figures] = []
    with firestore_emulator() as (host, log):
        os.environ["FIRESTORE_EMULATOR_HOST"] = host
        for run, layout in enumerate(LAYOUTS):
            timeouts_before = log.read_text(errors="replace").count(LOCK_TIMEOUT)
            threads = args.threads if layout.threaded else 1
            figures = measure(layout, f"run{run}", args.transactions, threads, args.shards)
            timeouts = log.read_text(errors="replace").count(LOCK_TIMEOUT) - timeouts_before
            results.append(Figures(**{**asdict(figures), "lock_timeouts": timeouts}))
            print(
                f"{layout.name:38} {figures.per_second:7.1f} txn/s   {figures.attempts_per_transaction:4.2f} "
                f"attempts/txn   slowest {figures.slowest_seconds:5.2f} s   lock timeouts {timeouts}"
            )
    write_json("emulator_locks", {"machine": info, "results": [asdict(r) for r in results]})


@contextmanager
def firestore_emulator() -> Iterator[tuple[str, Path]]:
    """A Firestore emulator on free ports; yields its host:port and its log (which names each lock timeout)."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="emulator-locks-"))
    log = folder / "firestore.log"
    command = firestore_command(locate_emulators().firestore, port, free_port(), free_port())
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "Dev App Server is now running" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the Firestore emulator did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", log
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def measure(layout: Layout, run: str, transactions: int, threads: int, shards: int) -> Figures:
    from google.cloud import firestore

    db = firestore.Client(project=PROJECT)
    paths = _written_paths(layout, run, shards)
    for path in {p for group in paths for p in group} | {f"{run}/shared"}:
        db.document(path).set({"n": 0})
    context = get_context("spawn")  # clean processes, as separate instances are: no client state shared
    results = context.Queue()
    shared = f"{run}/shared" if layout.shared_read else None
    workers = [
        context.Process(target=_worker, args=(paths[i], shared, transactions, threads, i, results))
        for i in range(layout.processes)
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.monotonic() - started
    done = [results.get() for _ in workers]
    total = transactions * layout.processes
    # Every increment is there: nothing was lost to the aborts.
    assert sum(db.document(p).get().get("n") for p in {p for group in paths for p in group}) == total
    return Figures(
        layout=layout.name,
        transactions=total,
        per_second=round(total / wall, 2),
        attempts_per_transaction=round(sum(attempts for attempts, _ in done) / total, 2),
        slowest_seconds=round(max(slowest for _, slowest in done), 2),
        lock_timeouts=0,
    )


def _written_paths(layout: Layout, run: str, shards: int) -> list[list[str]]:
    """Per process, the documents its transactions may write (one is chosen per transaction)."""
    if layout.written == "one":
        return [[f"{run}/hot"]] * layout.processes
    if layout.written == "own":
        return [[f"{run}/own-{i}"] for i in range(layout.processes)]
    return [[f"{run}/shard-{s}" for s in range(shards)]] * layout.processes


def _worker(paths: list[str], shared: str | None, transactions: int, threads: int, seed: int, results: Any) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from google.cloud import firestore

    db = firestore.Client(project=PROJECT)
    rng = random.Random(seed)
    queues = {path: threading.Lock() for path in paths}  # serialize_on: one transaction per document at a time
    counted = threading.Lock()
    attempts, slowest = 0, 0.0

    def one(path: str) -> None:
        nonlocal attempts, slowest
        ref = db.document(path)

        @firestore.transactional
        def bump(transaction: Any) -> None:
            nonlocal attempts
            with counted:
                attempts += 1
            if shared:
                db.document(shared).get(transaction=transaction)
            level = ref.get(transaction=transaction).get("n")
            transaction.update(ref, {"n": level + 1})

        started = time.monotonic()
        with queues[path]:
            bump(db.transaction(max_attempts=100))
        with counted:
            slowest = max(slowest, time.monotonic() - started)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, [rng.choice(paths) for _ in range(transactions)]))
    results.put((attempts, slowest))


if __name__ == "__main__":
    main()
