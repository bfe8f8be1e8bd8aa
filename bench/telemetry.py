"""Benchmark: telemetry ingest → analytics on the local stack, in readings per second.

    .venv/bin/python bench/telemetry.py [--readings 2000] [--devices 10] [--warm-up 6000] [--state-dir .local]

Runs the device simulator (``stack/simulate.py``: unique readings, 10 % re-sent later, 10 % out of order) in two
shapes — small batches at modest concurrency (batch 50, 4 requests in flight: many small pushes) and large
batches at higher concurrency (batch 500, 8 in flight) — and, for each, measures ingest (HTTP 202s) and end to
end (first request → every unique reading counted in analytics' windows in Firestore). Each run uses fresh
device ids, so runs do not interfere; ``--warm-up`` readings per shape go first, unmeasured. A fresh local stack
unless ``--state-dir`` names a running one. Prints a table and writes ``.local/bench/telemetry.json``. Figures
only, never a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import machine, machine_line, running_stack, write_json

SHAPES = ((50, 4), (500, 8))  # (readings per request, requests in flight)
# Unique readings per shape sent unmeasured first. On a fresh stack, with 40 readings of warm-up, three runs in a row
# went end to end at 230, 315, 358 readings/s (batches of 50) and 1,350, 1,352, 1,761 (of 500); with 6,000: 443, 527
# and 1,762, 2,122 (the stack keeps speeding up for longer; docs/performance.md).
WARM_UP = 6000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=2000, help="unique readings per shape (default 2000)")
    parser.add_argument("--devices", type=int, default=10, help="devices per shape (default 10)")
    parser.add_argument(
        "--warm-up",
        type=int,
        default=WARM_UP,
        help=f"unique readings per shape sent unmeasured first (default {WARM_UP}; see WARM_UP)",
    )
    parser.add_argument("--state-dir", type=Path, help="a running stack's state dir (default: start one)")
    args = parser.parse_args()
    info = machine()
    from stack.simulate import Plan, run_simulation

    def plan(readings: int, batch: int) -> Plan:
        return Plan(
            devices=args.devices,
            readings=readings,
            batch=batch,
            duplicates=0.1,
            shuffle=0.1,
            spikes=0.01,
            rate=0,
            seed=7,
        )

    rows = []
    with running_stack(args.state_dir) as stack:
        state_dir = Path(stack["logs"]).parent
        first = Plan(devices=2, readings=40, batch=20, duplicates=0, shuffle=0, spikes=0, rate=0, seed=1)
        run_simulation(state_dir, first, concurrency=2, wait=True)  # first requests build the clients
        for batch, concurrency in SHAPES if args.warm_up else ():
            warm = run_simulation(state_dir, plan(args.warm_up, batch), concurrency=concurrency, wait=True)
            print(
                f"  (warm-up) batch {batch}, {concurrency} in flight: ingest {warm.ingest_per_second:.0f}/s, "
                f"end to end {warm.end_to_end_per_second or 0.0:.0f}/s",
                file=sys.stderr,
            )
        for batch, concurrency in SHAPES:
            outcome = run_simulation(state_dir, plan(args.readings, batch), concurrency=concurrency, wait=True)
            rows.append(
                {
                    "batch": batch,
                    "concurrency": concurrency,
                    "unique": outcome.unique,
                    "sent": outcome.sent,
                    "ingest_per_s": round(outcome.ingest_per_second, 1),
                    "end_to_end_per_s": round(outcome.end_to_end_per_second or 0.0, 1),
                    "counted_in_s": round(outcome.counted_in_seconds or 0.0, 2),
                }
            )

    print(f"\n{args.devices} devices, {args.readings} unique readings per shape; " + machine_line(info) + "\n")
    print("| readings / request | in flight | sent (with re-sends) | ingest readings/s | end to end readings/s |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['batch']} | {row['concurrency']} | {row['sent']} | {row['ingest_per_s']:.0f} "
            f"| {row['end_to_end_per_s']:.0f} |"
        )
    write_json("telemetry", {"machine": info, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
