"""Benchmark: telemetry ingest → analytics on the local stack, in readings per second.

    .venv/bin/python bench/telemetry.py [--readings 2000] [--devices 10] [--state-dir .local]

Runs the device simulator (``stack/simulate.py``: unique readings, 10 % re-sent later, 10 % out of order) in two
shapes — small batches at modest concurrency (batch 50, 4 requests in flight: many small pushes) and large
batches at higher concurrency (batch 500, 8 in flight) — and, for each, measures ingest (HTTP 202s) and end to
end (first request → every unique reading counted in analytics' windows in Firestore). Each run uses fresh
device ids, so runs do not interfere. A fresh local stack unless ``--state-dir`` names a running one. Prints a
table and writes ``.local/bench/telemetry.json``. Figures only, never a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, machine_line, running_stack, write_json

SHAPES = ((50, 4), (500, 8))  # (readings per request, requests in flight)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=2000, help="unique readings per shape (default 2000)")
    parser.add_argument("--devices", type=int, default=10, help="devices per shape (default 10)")
    parser.add_argument("--state-dir", type=Path, help="a running stack's state dir (default: start one)")
    args = parser.parse_args()
    info = machine()
    from stack.simulate import Plan, run_simulation

    rows = []
    with running_stack(args.state_dir) as stack:
        state_dir = Path(stack["logs"]).parent
        warm = Plan(devices=2, readings=40, batch=20, duplicates=0, shuffle=0, spikes=0, rate=0, seed=1)
        run_simulation(state_dir, warm, concurrency=2, wait=True)  # first requests build the clients
        for batch, concurrency in SHAPES:
            plan = Plan(
                devices=args.devices,
                readings=args.readings,
                batch=batch,
                duplicates=0.1,
                shuffle=0.1,
                spikes=0.01,
                rate=0,
                seed=7,
            )
            outcome = run_simulation(state_dir, plan, concurrency=concurrency, wait=True)
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
