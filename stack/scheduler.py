"""The local stand-in for Cloud Scheduler: POSTs to each schedule's service path every N seconds.

``python -m stack.scheduler --job NAME=URL@SECONDS ...``. In the cloud the same paths are called by Cloud
Scheduler jobs with an OIDC token (terraform/); the schedules come from topology.yaml.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass

import requests

READY_LINE = "scheduler running"


@dataclass(frozen=True)
class Job:
    name: str
    url: str
    every_seconds: float


def parse_job(text: str) -> Job:
    try:
        name, rest = text.split("=", 1)
        url, every = rest.rsplit("@", 1)
        return Job(name, url, float(every))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=URL@SECONDS, got {text!r}") from None


def run(jobs: list[Job], stop: threading.Event) -> None:
    due = {job.name: time.monotonic() + job.every_seconds for job in jobs}
    while not stop.is_set():
        for job in jobs:
            if time.monotonic() >= due[job.name]:
                due[job.name] = time.monotonic() + job.every_seconds
                _call(job)
        stop.wait(0.2)


def _call(job: Job) -> None:
    try:
        response = requests.post(job.url, timeout=max(job.every_seconds, 30))
        outcome = {"job": job.name, "status": response.status_code, "body": response.text[:200]}
    except requests.RequestException as exc:
        outcome = {"job": job.name, "error": str(exc)}
    # Quiet when nothing happened; the service's own log says what a sweep did.
    if outcome.get("status") != 200 or '"published": 0' not in outcome.get("body", ""):
        print(json.dumps(outcome), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job", type=parse_job, action="append", default=[], help="NAME=URL@SECONDS")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"{READY_LINE}: {', '.join(f'{j.name} every {j.every_seconds:g}s' for j in args.job)}", flush=True)
    run(args.job, stop)
    sys.exit(0)


if __name__ == "__main__":
    main()
