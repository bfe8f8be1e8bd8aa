"""Benchmark: the push path, bare functions-framework vs the eventkit runtime with and without its Firestore work.

    .venv/bin/python bench/push_path.py [-n 2000] [-c 16] [--repeat 3] [--state-dir .local] [--workers 1,2]
                                         [--stack-warm-up 30000] [--baseline DIR]

Each row serves one target of ``bench/push_app`` the way Cloud Run does (``functions-framework --target T
--signature-type http``: gunicorn, gthread worker) on a free loopback port, against a local stack's emulators
(a fresh stack in a temp dir unless ``--state-dir`` names a running one), and POSTs N Pub/Sub push envelopes
(one distinct ``shop.order.placed.v1`` event each) at concurrency C from an asyncio keep-alive client:

| row | target | what runs per push |
| --- | --- | --- |
| (a) bare | ``bare.py:bare`` | functions-framework, returns at once |
| (b) runtime | ``main.py:plain`` | eventkit: read the delivery, validate, route, log, answer; no Firestore |
| (c) + ledger | ``main.py:once`` | (b) + the idempotency transaction (read ledger, write one doc + ledger entry) |
| (d) + publish | ``main.py:full`` | (c) + one event staged in the outbox, published after the commit, marked sent |
| (e) by hand | ``by_hand.py:by_hand`` | (a) + (d)'s round trips (read-begun transaction, commit, publish), no runtime |
| (f) by hand, at once | ``by_hand.py:by_hand_at_once`` | (e) with the publish sent at once instead of batched |

(e) measures the transaction's and publish's own cost where it is paid, in a served function: (e) − (a) per event
is that cost, (d) − (e) is what the runtime adds, and the goal compares (a) with (d) minus that cost. (e)
publishes through the library's default batches, as a hand-written function would, holding a server thread
while its message waits for company; (f) sends each message at once in its own call (eventkit's call; eventkit
groups only the messages that arrive while a call is under way), and is the faster of the two here: the same
accounting against (f) is printed too.

``--baseline DIR`` (another checkout, e.g. ``git worktree add /tmp/before <commit>``) adds rows (b), (c) and (d)
served from that checkout's ``bench/push_app`` on its own eventkit (``PYTHONPATH``), interleaved with this one's in
every repetition against the same stack: a before/after in one run.

Then the Firestore/Pub/Sub work alone, without HTTP: ``Consumer.process`` in this process at the same
concurrency (threads), for (c) and (d). Events/s, p50/p99 and the ratio of each to (a). Figures only, never a test.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import (
    BENCH_OUT,
    client_env,
    cpu_seconds,
    load,
    machine,
    machine_line,
    percentile,
    process_group,
    push_envelope,
    running_stack,
    serve,
    write_json,
)

APP = Path(__file__).resolve().parent / "push_app"
ROWS = (
    ("(a) bare", APP / "bare.py", "bare"),
    ("(b) runtime, no idempotency", APP / "main.py", "plain"),
    ("(c) + ledger transaction", APP / "main.py", "once"),
    ("(d) + outbox publish", APP / "main.py", "full"),
    ("(e) bare + (d)'s Firestore and Pub/Sub calls by hand", APP / "by_hand.py", "by_hand"),
    ("(f) as (e), each publish sent at once", APP / "by_hand.py", "by_hand_at_once"),
)
WARM_UP = 50  # pushes per row before it is measured: the served process's first requests
STACK_WARM_UP = 30_000  # pushes through (d) before any row: the emulators' first calls (see --stack-warm-up)
STACK_WARM_UP_BATCH = 5_000  # printed one batch at a time, so the run shows whether the stack had settled
HEADERS = {"Content-Type": "application/json"}


def push_bodies(count: int, tag: str) -> list[bytes]:
    """Pub/Sub push envelopes as the emulator sends them, each carrying a distinct OrderPlaced event."""
    bodies = []
    for _ in range(count):
        event_id = f"bench-{tag}-{uuid.uuid4().hex}"
        data = {
            "order_id": f"ord-{event_id}",
            "customer_id": "cus-bench",
            "items": [{"sku": "MUG-1", "quantity": 1, "unit_price": 1200}],
            "total": 1200,
            "currency": "EUR",
        }
        bodies.append(
            push_envelope(
                "shop.order.placed.v1",
                data,
                subscription="projects/p/subscriptions/bench",
                source="//shop/services/orders",
                subject=f"orders/ord-{event_id}",
                event_id=event_id,
            )
        )
    return bodies


def ensure_topic(env: dict[str, str], topic: str) -> None:
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    os.environ.update(env)
    path = f"projects/{env['GOOGLE_CLOUD_PROJECT']}/topics/{topic}"
    with contextlib.suppress(AlreadyExists):
        pubsub_v1.PublisherClient().create_topic(name=path)


def cpu_per_event(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    return {name: round((after[name] - before[name]) * 1000 / n, 3) for name in before}


def run_http(
    label: str,
    source: Path,
    target: str,
    env: dict[str, str],
    n: int,
    c: int,
    log_dir: Path,
    emulators: dict[str, int],
) -> dict:
    served = serve(target, source, env, log=log_dir / f"{target}-{env.get('WORKERS', '1')}w.log")
    try:
        warm = load(served.port, "/", push_bodies(WARM_UP, f"warm-{target}"), HEADERS, c)
        if warm.errors:
            raise SystemExit(f"{label}: warm-up failed {warm.statuses}; see {served.log}")
        bodies = push_bodies(n, target)

        def cpu() -> dict[str, float]:
            return {"service": cpu_seconds(process_group(served.process.pid))} | {
                name: cpu_seconds(process_group(pid)) for name, pid in emulators.items()
            }

        before = cpu()
        result = load(served.port, "/", bodies, HEADERS, c)
        cpu_ms = cpu_per_event(before, cpu(), n)
    finally:
        served.stop()
    summary = result.summary() | {"cpu_ms_per_event": cpu_ms}
    print(
        f"  {label}: {summary['per_second']:.0f}/s p50 {summary['p50_ms']:.1f} ms p99 {summary['p99_ms']:.1f} ms "
        f"{summary['statuses']}",
        file=sys.stderr,
    )
    return {"row": label, "target": f"{source.name}:{target}", "workers": env.get("WORKERS", "1"), **summary}


def accounted_ratio(a: float, d: float, e: float) -> float:
    """(a)'s throughput over (d)'s once the transaction's and publish's own cost, (e) - (a) per event, is out."""
    remaining = 1 / d - (1 / e - 1 / a)
    return (1 / a) / remaining if remaining > 0 else float("inf")


def per_repetition(a: dict[str, Any], d: dict[str, Any], e: dict[str, Any]) -> list[float]:
    """:func:`accounted_ratio` within each repetition (its rows ran minutes apart at most): the spread."""
    return [
        round(accounted_ratio(ra["per_second"], rd["per_second"], re["per_second"]), 3)
        for ra, rd, re in zip(a["runs"], d["runs"], e["runs"], strict=True)
    ]


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from repeated runs: the median of each figure (each run kept under ``runs``)."""
    row = dict(runs[0])
    for key in ("per_second", "p50_ms", "p99_ms"):
        row[key] = statistics.median(run[key] for run in runs)
    row["errors"] = sum(run["errors"] for run in runs)
    row["cpu_ms_per_event"] = {
        name: round(statistics.median(run["cpu_ms_per_event"][name] for run in runs), 3)
        for name in runs[0]["cpu_ms_per_event"]
    }
    row["runs"] = [{k: run[k] for k in ("per_second", "p50_ms", "p99_ms", "cpu_ms_per_event")} for run in runs]
    return row


def run_direct(label: str, target: str, n: int, c: int, emulators: dict[str, int]) -> dict:
    """``Consumer.process`` without HTTP: routing, the ledger transaction (and the publish) alone, C threads."""
    from push_app import main as app  # bench/push_app/main.py

    logging.getLogger().setLevel(logging.WARNING)  # this process's own log lines are not what is measured

    from eventkit.catalog import CATALOG
    from eventkit.delivery import read_delivery

    consumer = {"once": app.once_consumer, "full": app.full_consumer}[target]

    def one(body: bytes) -> float:
        started = time.perf_counter()
        outcome = consumer.process(read_delivery(HEADERS, body, CATALOG))
        if outcome.http_status != 200:
            raise SystemExit(f"{target}: {outcome}")
        return (time.perf_counter() - started) * 1000

    def cpu() -> dict[str, float]:
        emulator_cpu = {name: cpu_seconds(process_group(pid)) for name, pid in emulators.items()}
        return {"service": time.process_time()} | emulator_cpu

    with ThreadPoolExecutor(c) as pool:
        list(pool.map(one, push_bodies(WARM_UP, f"warm-direct-{target}")))
        bodies = push_bodies(n, f"direct-{target}")
        before, started = cpu(), time.perf_counter()
        latencies = list(pool.map(one, bodies))
        seconds = time.perf_counter() - started
        cpu_ms = cpu_per_event(before, cpu(), n)
    row = {
        "row": label,
        "target": f"Consumer.process ({target}), in process",
        "workers": "-",
        "requests": n,
        "errors": 0,
        "seconds": round(seconds, 3),
        "per_second": round(n / seconds, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "cpu_ms_per_event": cpu_ms,
    }
    print(
        f"  {label}: {row['per_second']:.0f}/s p50 {row['p50_ms']:.1f} ms p99 {row['p99_ms']:.1f} ms", file=sys.stderr
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="pushes per row (default 2000)")
    parser.add_argument("-c", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument("--state-dir", type=Path, help="a running stack's state dir (default: start one)")
    parser.add_argument("--workers", default="1", help="gunicorn WORKERS values to run each row with, e.g. 1,2")
    parser.add_argument("--rows", default="abcdef", help="which HTTP rows (default abcdef)")
    parser.add_argument(
        "--stack-warm-up",
        type=int,
        default=STACK_WARM_UP,
        help=f"pushes through (d) before any row, not measured: the emulators' JIT (default {STACK_WARM_UP})",
    )
    parser.add_argument("--baseline", type=Path, help="another checkout whose rows (b)-(d) run beside these")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each HTTP row, interleaved; the table shows medians (default 3)"
    )
    args = parser.parse_args()
    info = machine()
    log_dir = BENCH_OUT / "push_path-logs"

    with running_stack(args.state_dir) as stack:
        env = {**os.environ, **client_env(stack), "TOPIC_BENCH_EVENTS": "bench-events", "PYTHONUNBUFFERED": "1"}
        env.pop("K_SERVICE", None)
        ensure_topic(env, "bench-events")
        emulators = {name: stack["pids"][name] for name in ("firestore", "pubsub")}  # process groups (JVM + wrapper)
        if args.stack_warm_up:
            # A fresh stack's emulators get faster over their first tens of thousands of calls (JIT, GC sizing);
            # unwarmed, that falls on whichever rows come first, and the ratios move by 2x (docs/performance.md).
            _, source, target = next(row for row in ROWS if row[0].startswith("(d)"))
            left = args.stack_warm_up
            while left > 0:
                batch = min(left, STACK_WARM_UP_BATCH)
                run_http("(stack warm-up)", source, target, env, batch, args.c, log_dir, emulators)
                left -= batch
        rows: list[dict[str, Any]] = []
        measured = [(label, source, target, {}) for label, source, target in ROWS if label[1] in args.rows]
        if args.baseline:
            baseline, baseline_env = (
                args.baseline.resolve(),
                {"PYTHONPATH": str(args.baseline.resolve() / "services" / "eventkit")},
            )
            measured += [
                (f"{label} [baseline]", baseline / "bench" / "push_app" / source.name, target, baseline_env)
                for label, source, target in ROWS
                if label[1] in "bcd" and label[1] in args.rows
            ]
        for workers in args.workers.split(","):
            runs: dict[str, list[dict[str, Any]]] = {}
            for _ in range(args.repeat):  # interleaved, so a slow spell of the shared machine hits every row
                for label, source, target, extra_env in measured:
                    row_env = {**env, **extra_env, "WORKERS": workers}
                    run = run_http(label, source, target, row_env, args.n, args.c, log_dir, emulators)
                    runs.setdefault(label, []).append(run)
            rows += [median_row(label_runs) for label_runs in runs.values()]
        os.environ.update(env)
        direct = [
            run_direct("(c') ledger transaction alone", "once", args.n, args.c, emulators),
            run_direct("(d') transaction + publish alone", "full", args.n, args.c, emulators),
        ]

    print(
        f"\n{args.n} pushes per row at concurrency {args.c}, loopback, median of {args.repeat} interleaved runs "
        "per HTTP row; " + machine_line(info)
    )
    print("functions-framework (gunicorn gthread, THREADS default = 4 × CPUs) against the stack's emulators\n")
    print("| row | WORKERS | events/s | p50 ms | p99 ms | events/s vs (a) | p50 vs (a) | p99 vs (a) | non-2xx |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    baselines = {r["workers"]: r for r in rows if r["row"].startswith("(a)")}
    first_base = next(iter(baselines.values()), None)
    for row in rows + direct:
        base = baselines.get(row["workers"], first_base)
        if base:
            ratios = (
                row["per_second"] / base["per_second"],
                row["p50_ms"] / base["p50_ms"],
                row["p99_ms"] / base["p99_ms"],
            )
            row["vs_a"] = {"per_second": round(ratios[0], 3), "p50": round(ratios[1], 2), "p99": round(ratios[2], 2)}
            ratio_text = f"{ratios[0]:.2f}× | {ratios[1]:.1f}× | {ratios[2]:.1f}×"
        else:
            ratio_text = "- | - | -"
        print(
            f"| {row['row']} | {row['workers']} | {row['per_second']:.0f} | {row['p50_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {ratio_text} | {row['errors']} |"
        )

    goal = {}
    this = [r for r in rows if "[baseline]" not in r["row"]]
    full = next((r for r in this if r["row"].startswith("(d)") and r["workers"] == "1"), None)
    by_hand = next((r for r in rows if r["row"].startswith("(e)") and r["workers"] == "1"), None)
    if full and by_hand and first_base:
        # Per-event cost (1 / throughput): the transaction's and publish's own cost is (e) - (a); taken out of
        # (d), what is left is the framework plus the runtime, compared with the framework alone (a).
        cost_a, cost_d, cost_e = (1000 / r["per_second"] for r in (first_base, full, by_hand))
        store = cost_e - cost_a
        remaining = cost_d - store
        adjusted = accounted_ratio(*(r["per_second"] for r in (first_base, full, by_hand)))
        per_run = per_repetition(first_base, full, by_hand)
        goal = {
            "raw_ratio_d_to_a": round(full["per_second"] / first_base["per_second"], 3),
            "a_cost_ms_per_event": round(cost_a, 3),
            "d_cost_ms_per_event": round(cost_d, 3),
            "e_cost_ms_per_event": round(cost_e, 3),
            "store_cost_ms_per_event": round(store, 3),
            "runtime_cost_ms_per_event": round(cost_d - cost_e, 3),
            "adjusted_ratio_d_to_a": round(adjusted, 3),
            "adjusted_ratio_per_repetition": per_run,
            "d_p99_ms": full["p99_ms"],
        }
        print(
            f"\n(d) raw: {goal['raw_ratio_d_to_a']:.2f}× (a)'s events/s. Per event (1 / throughput): (a) {cost_a:.2f} "
            f"ms, (d) {cost_d:.2f} ms, (e) {cost_e:.2f} ms. The transaction's and publish's own cost, (e) − (a): "
            f"{store:.2f} ms; the runtime's, (d) − (e): {cost_d - cost_e:.2f} ms. (d) with the transaction's own cost "
            f"taken out: {remaining:.2f} ms, {adjusted:.2f}× (a)'s throughput (goal ≥ 0.5×; per repetition: "
            f"{', '.join(f'{r:.2f}×' for r in per_run)}); (d) p99 {full['p99_ms']:.1f} ms (goal < 50 ms)"
        )
    before = next((r for r in rows if r["row"].startswith("(d)") and r["row"].endswith("[baseline]")), None)
    if before and by_hand and full:
        cost_before = 1000 / before["per_second"]
        service_cpu = {key: r["cpu_ms_per_event"]["service"] for key, r in (("d", full), ("b", before), ("e", by_hand))}
        goal["baseline"] = {
            "d_cost_ms_per_event": round(cost_before, 3),
            "runtime_cost_ms_per_event": round(cost_before - 1000 / by_hand["per_second"], 3),
            "service_cpu_d_minus_e": round(service_cpu["b"] - service_cpu["e"], 3),
        }
        print(
            f"Baseline (d) {cost_before:.2f} ms per event against this checkout's {1000 / full['per_second']:.2f}; "
            f"the runtime's share, (d) − (e): baseline {cost_before - 1000 / by_hand['per_second']:.2f} ms, this "
            f"{1000 / full['per_second'] - 1000 / by_hand['per_second']:.2f} ms. Service CPU per event, (d) − (e): "
            f"baseline {service_cpu['b'] - service_cpu['e']:.2f} ms, this {service_cpu['d'] - service_cpu['e']:.2f} ms"
        )
    at_once = next((r for r in rows if r["row"].startswith("(f)") and r["workers"] == "1"), None)
    if full and at_once and first_base:
        # The same accounting with the faster by-hand baseline: the cost of the calls when each message is sent
        # at once in its own call, the call eventkit makes.
        cost_f = 1000 / at_once["per_second"]
        versus_f = accounted_ratio(*(r["per_second"] for r in (first_base, full, at_once)))
        goal |= {
            "f_cost_ms_per_event": round(cost_f, 3),
            "adjusted_ratio_d_to_a_against_f": round(versus_f, 3),
            "adjusted_ratio_per_repetition_against_f": per_repetition(first_base, full, at_once),
        }
        print(
            f"Against (f) instead, {cost_f:.2f} ms per event: the calls' own cost (f) − (a) "
            f"{cost_f - 1000 / first_base['per_second']:.2f} ms, the runtime's (d) − (f) "
            f"{1000 / full['per_second'] - cost_f:.2f} ms, (d) with that cost taken out {versus_f:.2f}× (a)'s "
            f"throughput (per repetition: "
            f"{', '.join(f'{r:.2f}×' for r in goal['adjusted_ratio_per_repetition_against_f'])})"
        )
    print("\nCPU per event (ms; user + system, from /proc): the served process group, and each emulator JVM\n")
    print("| row | WORKERS | service | Firestore emulator | Pub/Sub emulator | service vs (a) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    cpu_base = first_base["cpu_ms_per_event"]["service"] if first_base else None
    for row in rows + direct:
        cpu_ms = row["cpu_ms_per_event"]
        versus = f"{cpu_ms['service'] / cpu_base:.1f}×" if cpu_base else "-"
        print(
            f"| {row['row']} | {row['workers']} | {cpu_ms['service']:.2f} | {cpu_ms['firestore']:.2f} "
            f"| {cpu_ms['pubsub']:.2f} | {versus} |"
        )
    if full and by_hand and first_base and cpu_base:
        # The same accounting in the service's CPU per event: (e) - (a) is the client side of the transaction and
        # publish; the emulators' CPU is the server side of that work and is not the service's at all.
        service = {key: r["cpu_ms_per_event"]["service"] for key, r in (("a", first_base), ("d", full), ("e", by_hand))}
        own = service["d"] - (service["e"] - service["a"])
        goal["service_cpu_ms_per_event"] = service | {"d_minus_store": round(own, 3)}
        goal["cpu_capacity_ratio_d_to_a"] = round(cpu_base / own, 3) if own > 0 else None
        print(
            f"\n(d) by CPU: the service spends {service['d']:.2f} ms per event, (e) {service['e']:.2f}, (a) "
            f"{service['a']:.2f}; (d) without the client side of the transaction and publish "
            f"((e) − (a)): {own:.2f} ms, "
            + (f"{cpu_base / own:.2f}× (a)'s events per CPU-second" if own > 0 else "within noise of (a)")
            + f"; the emulators add {full['cpu_ms_per_event']['firestore'] + full['cpu_ms_per_event']['pubsub']:.2f} ms"
        )
    write_json(
        "push_path",
        {
            "machine": info,
            "n": args.n,
            "concurrency": args.c,
            "repeat": args.repeat,
            "rows": rows,
            "direct": direct,
            "goal": goal,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
