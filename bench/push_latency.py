"""Benchmark: push-path latency against requests in flight, and against the server's thread count.

    .venv/bin/python bench/push_latency.py [--rows ad] [--concurrency 1,2,4,8,16,32] [--threads 8] [-n 1000]
                                           [--state-dir .local/bench-stack]

``bench/push_path.py`` measures throughput at one concurrency, where a CPU-bound server queues every request
beyond what it can run: its p99 is mostly waiting (16 in flight / 320 events/s = 50 ms on average, Little's law).
This one serves the same targets (``bench/push_app``, rows as there) one at a time and sends N pushes at each
concurrency in turn, so the table shows where the p99 stays under the issue's 50 ms and where queueing starts —
the figure to set Cloud Run's requests-per-instance by (docs/performance.md). ``--threads`` sets gunicorn's
``THREADS`` (functions-framework's default is 4 × CPUs); several values compare thread counts at the same load.
Figures only, never a test.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from _common import BENCH_OUT, client_env, machine, machine_line, running_stack, write_json
from push_path import ROWS, ensure_topic, run_http

P99_GOAL_MS = 50.0


def default_threads() -> str:
    return str((os.cpu_count() or 1) * 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="pushes per row and concurrency (default 1000)")
    parser.add_argument("--concurrency", default="1,2,4,8,16,32", help="requests in flight, in turn")
    parser.add_argument("--rows", default="ad", help="which rows of bench/push_path.py (default ad)")
    parser.add_argument(
        "--threads", default=default_threads(), help="gunicorn THREADS values, e.g. 8,16 (default 4 × CPUs)"
    )
    parser.add_argument("--state-dir", type=Path, help="a running stack's state dir (default: start one)")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    thread_counts = args.threads.split(",")
    info = machine()

    results: list[dict[str, Any]] = []
    with running_stack(args.state_dir) as stack:
        env = {**os.environ, **client_env(stack), "TOPIC_BENCH_EVENTS": "bench-events", "PYTHONUNBUFFERED": "1"}
        env.pop("K_SERVICE", None)
        ensure_topic(env, "bench-events")
        emulators = {name: stack["pids"][name] for name in ("firestore", "pubsub")}
        log_dir = BENCH_OUT / "push_latency-logs"
        for threads in thread_counts:
            for label, source, target in ROWS:
                if label[1] not in args.rows:
                    continue
                for c in levels:
                    row_env = {**env, "WORKERS": "1", "THREADS": threads}
                    run = run_http(label, source, target, row_env, args.n, c, log_dir, emulators)
                    results.append(run | {"threads": int(threads), "concurrency": c})

    print(f"\n{args.n} pushes per row and concurrency, loopback; " + machine_line(info))
    print("functions-framework (gunicorn gthread, WORKERS 1) against the stack's emulators\n")
    print("| row | THREADS | in flight | events/s | p50 ms | p99 ms | p99 < 50 ms | non-2xx |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | :---: | ---: |")
    for run in results:
        print(
            f"| {run['row']} | {run['threads']} | {run['concurrency']} | {run['per_second']:.0f} | "
            f"{run['p50_ms']:.1f} | {run['p99_ms']:.1f} | {'yes' if run['p99_ms'] < P99_GOAL_MS else 'no'} | "
            f"{run['errors']} |"
        )
    write_json("push_latency", {"machine": info, "n": args.n, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
