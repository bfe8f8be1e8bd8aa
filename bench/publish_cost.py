"""Benchmark: what one publish costs the publishing process, eventkit's ``publish.send`` against the library's client.

    .venv/bin/python bench/publish_cost.py [-n 400] [--repeat 4] [--threads 16] [--state-dir .local]

Against the stack's Pub/Sub emulator (a fresh stack in a temp dir unless ``--state-dir`` names a running one),
from this process, each row publishing ``-n`` messages (one small CloudEvent each) and waiting for every message
id, as the outbox does:

- one at a time: the library's ``PublisherClient`` with ``max_latency=0`` (``publish().result()``: a batch of one,
  its commit thread and future, what eventkit used before) against ``publish.send`` alone (one Publish call
  from the calling thread);
- from ``--threads`` threads at once: the library's client with its 10 ms batches, each message in its own
  Publish call (``publish.publish_call``), and ``publish.send`` (group commit: one call per topic at a time,
  carrying every message that arrived while the previous one was under way; publish_groups.py).

CPU per message is the process's user + system time (every thread: gRPC's, the client's) over the messages;
rows run ``--repeat`` times, interleaved, and the medians are shown. Figures only, never a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import client_env, machine, machine_line, running_stack, write_json
from push_path import ensure_topic

TOPIC = "bench-publish"
WARM_UP = 50


def _message(index: int) -> tuple[bytes, dict[str, str]]:
    attributes = {
        "ce-id": f"bench-{uuid.uuid4().hex}",
        "ce-type": "shop.order.confirmed.v1",
        "ce-source": "//shop/bench",
        "ce-specversion": "1.0",
        "content-type": "application/json",
    }
    return b'{"order_id":"ord-%d","total":1200,"currency":"EUR"}' % index, attributes


def _measure(publish: Callable[[int], str], n: int, threads: int) -> dict[str, float]:
    started_cpu, started = time.process_time(), time.perf_counter()
    if threads == 1:
        for index in range(n):
            publish(index)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(publish, range(n)))
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    return {"cpu_ms_per_message": cpu / n * 1000, "wall_ms_per_message": wall / n * 1000, "per_second": n / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=400, help="messages per row and repetition (default 400)")
    parser.add_argument("--repeat", type=int, default=4, help="interleaved repetitions (default 4)")
    parser.add_argument("--threads", type=int, default=16, help="publishing threads of the concurrent rows")
    parser.add_argument("--state-dir", type=Path, help="a running stack's state dir (default: start one)")
    args = parser.parse_args()
    info = machine()

    with running_stack(args.state_dir) as stack:
        ensure_topic(client_env(stack), TOPIC)  # and the emulator variables into this process's environment
        from google.cloud import pubsub_v1
        from google.pubsub_v1 import PubsubMessage

        from eventkit import publish as eventkit_publish

        topic = f"projects/{stack['project']}/topics/{TOPIC}"

        def library(max_latency: float) -> Callable[[int], str]:
            client = pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_latency=max_latency))

            def publish(index: int) -> str:
                data, attributes = _message(index)
                return str(client.publish(topic, data, **attributes).result(timeout=30))

            return publish

        def own_call(index: int) -> str:
            data, attributes = _message(index)
            return eventkit_publish.publish_call(topic, [PubsubMessage(data=data, attributes=attributes)], 30.0)[0]

        def send(index: int) -> str:
            data, attributes = _message(index)
            return eventkit_publish.send(topic, data, attributes, log_line=False)

        rows: list[tuple[str, Callable[[int], str], int]] = [
            ("library client, max_latency 0: one at a time", library(0.0), 1),
            ("eventkit publish.send: one at a time", send, 1),
            (f"library client, 10 ms batches: {args.threads} threads", library(0.01), args.threads),
            (f"each message in its own Publish call: {args.threads} threads", own_call, args.threads),
            (f"eventkit publish.send: {args.threads} threads", send, args.threads),
        ]
        for _, publish, threads in rows:  # clients built, channels open
            _measure(publish, WARM_UP, threads)
        runs: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in rows}
        for _ in range(args.repeat):
            for label, publish, threads in rows:
                runs[label].append(_measure(publish, args.n, threads))

    print(
        f"\n{args.n} messages per row, median of {args.repeat} interleaved runs, against the Pub/Sub emulator; "
        + machine_line(info)
        + "\n"
    )
    print("| row | CPU ms / message | wall ms / message | messages/s | CPU per run (ms / message) |")
    print("| --- | ---: | ---: | ---: | --- |")
    results: list[dict[str, Any]] = []
    for label, measured in runs.items():
        median = {key: statistics.median(run[key] for run in measured) for key in measured[0]}
        each = ", ".join(f"{run['cpu_ms_per_message']:.3f}" for run in measured)
        print(
            f"| {label} | {median['cpu_ms_per_message']:.3f} | {median['wall_ms_per_message']:.3f} | "
            f"{median['per_second']:.0f} | {each} |"
        )
        results.append({"row": label, "median": median, "runs": measured})
    write_json(
        "publish_cost",
        {
            "machine": info,
            "n": args.n,
            "repeat": args.repeat,
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
