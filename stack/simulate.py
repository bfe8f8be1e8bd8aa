"""``python -m stack simulate``: unreliable devices talking to the running stack's telemetry ingest.

N devices each produce readings (``temperature`` around a per-device baseline, ``humidity``), at a total rate
or as fast as the ingest answers. Like real devices they misbehave on request: a share of readings is sent
again later (``--duplicates``), a share is held back and sent out of order (``--shuffle``), and a few readings
are spikes (``--spikes``) far above the baseline. Batches go to ``POST /telemetry`` of the
``telemetry-ingest`` service named in ``<state>/stack.json``.

With ``--wait`` it then follows the readings into Firestore until the analytics counted every unique one, and
prints the end-to-end throughput (unique readings per second, first request to last reading counted).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stack.errors import StackError
from stack.state import StackInfo, read_info

INGEST_SERVICE = "telemetry-ingest"
SPIKE = 60.0
METRIC = "temperature"


@dataclass(frozen=True)
class Plan:
    devices: int = 10
    readings: int = 1000  # unique readings, over all devices
    batch: int = 50
    duplicates: float = 0.1
    shuffle: float = 0.1
    spikes: float = 0.01
    rate: float = 0.0  # readings per second over all devices; 0 = as fast as the ingest answers
    seed: int | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def device_ids(self) -> list[str]:
        return [f"sim-{self.run_id}-{n:03d}" for n in range(self.devices)]


def readings(plan: Plan, start: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """The unique readings from ``start``, round-robin over devices, ``1/rate`` (or 50 ms) apart."""
    step = timedelta(seconds=1 / plan.rate) if plan.rate else timedelta(milliseconds=50)
    baselines = {device: rng.uniform(15, 25) for device in plan.device_ids()}
    out = []
    for n in range(plan.readings):
        device = plan.device_ids()[n % plan.devices]
        value = baselines[device] + rng.gauss(0, 1.5) + (SPIKE if rng.random() < plan.spikes else 0.0)
        out.append(
            {
                "device_id": device,
                "reading_id": f"r{n // plan.devices:06d}",
                "ts": (start + n * step).isoformat(),
                "metrics": {METRIC: round(value, 3), "humidity": round(rng.uniform(30, 60), 2)},
            }
        )
    return out


def sending_order(unique: list[dict[str, Any]], plan: Plan, rng: random.Random) -> list[dict[str, Any]]:
    """Duplicates re-sent a few batches later, and a share of readings held back (out of order)."""
    stream = list(unique)
    for index, reading in enumerate(unique):
        if rng.random() < plan.duplicates:
            position = min(len(stream), index + rng.randint(1, 4 * plan.batch))
            stream.insert(position, dict(reading))
    for index in range(len(stream)):
        if rng.random() < plan.shuffle:
            other = min(len(stream) - 1, index + rng.randint(1, 3 * plan.batch))
            stream[index], stream[other] = stream[other], stream[index]
    return stream


def batches(stream: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(stream), size):
        yield stream[start : start + size]


@dataclass
class Outcome:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    requests: int = 0
    failed_requests: int = 0
    unique: int = 0
    sent_in_seconds: float = 0.0
    counted_in_seconds: float | None = None  # with ``wait``: first request → every unique reading counted

    @property
    def ingest_per_second(self) -> float:
        return self.sent / self.sent_in_seconds if self.sent_in_seconds else 0.0

    @property
    def end_to_end_per_second(self) -> float | None:
        return self.unique / self.counted_in_seconds if self.counted_in_seconds else None


def run_simulation(
    state_dir: Path, plan: Plan, *, concurrency: int = 4, wait: bool = False, wait_seconds: float = 300
) -> Outcome:
    """Send the plan's readings to telemetry-ingest (and, with ``wait``, follow them into analytics' counts)."""
    import requests

    info = _stack(state_dir)
    url = info.services[INGEST_SERVICE].rstrip("/") + "/telemetry"
    rng = random.Random(plan.seed)
    step = timedelta(seconds=1 / plan.rate) if plan.rate else timedelta(milliseconds=50)
    unique = readings(plan, datetime.now(UTC) - plan.readings * step, rng)
    stream = sending_order(unique, plan, rng)
    outcome = Outcome(unique=len(unique))
    session = requests.Session()

    counting = threading.Lock()

    def post(batch: list[dict[str, Any]]) -> None:
        response = session.post(url, json=batch, timeout=60)
        with counting:
            _count(outcome, batch, response)

    def _count(outcome: Outcome, batch: list[dict[str, Any]], response: Any) -> None:
        outcome.requests += 1
        outcome.sent += len(batch)
        if response.status_code != 202:
            outcome.failed_requests += 1
            return
        body = response.json()
        outcome.accepted += body["accepted"]
        outcome.rejected += body["rejected"]

    print(f"simulating {plan.devices} devices ({plan.device_ids()[0]} ...): {len(unique)} readings, "
          f"{len(stream) - len(unique)} duplicates, batches of {plan.batch} -> {url}")  # fmt: skip
    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        futures = []
        for number, batch in enumerate(batches(stream, plan.batch)):
            if plan.rate:  # pace: batch n leaves no earlier than n * batch / rate seconds after the first
                due = started + number * plan.batch / plan.rate
                time.sleep(max(0.0, due - time.monotonic()))
            futures.append(pool.submit(post, batch))
        for future in futures:
            future.result()  # a request that raised (connection refused ...) stops the run here
    sent_in = outcome.sent_in_seconds = time.monotonic() - started
    print(
        f"sent {outcome.sent} readings in {outcome.requests} requests in {sent_in:.2f} s "
        f"({outcome.sent / sent_in:.0f} readings/s): accepted {outcome.accepted}, rejected {outcome.rejected}, "
        f"failed requests {outcome.failed_requests}"
    )
    if outcome.failed_requests:
        raise StackError(f"{outcome.failed_requests} requests were not accepted; see {info.log_file(INGEST_SERVICE)}")
    if not wait:
        return outcome
    counted_in = outcome.counted_in_seconds = _wait_until_counted(info, plan, len(unique), started, wait_seconds)
    print(
        f"analytics counted all {len(unique)} unique readings {counted_in:.2f} s after the first request: "
        f"{len(unique) / counted_in:.0f} readings/s end to end"
    )
    return outcome


def _wait_until_counted(info: StackInfo, plan: Plan, expected: int, started: float, seconds: float) -> float:
    """Poll the devices' temperature windows until their counts add up to ``expected``."""
    import os

    os.environ.update(info.client_env())
    from google.cloud import firestore

    db = firestore.Client(project=info.project)
    deadline = time.monotonic() + seconds
    counted = 0
    while time.monotonic() < deadline:
        counted = sum(
            int(snapshot.get("count"))
            for device in plan.device_ids()
            for snapshot in db.collection("telemetry-devices")
            .document(device)
            .collection("metrics")
            .document(METRIC)
            .collection("windows")
            .stream()
        )
        if counted >= expected:
            if counted > expected:
                raise StackError(f"analytics counted {counted} readings; only {expected} were unique")
            return time.monotonic() - started
        time.sleep(0.25)
    raise StackError(f"analytics counted {counted} of {expected} readings within {seconds:.0f} s")


def _stack(state_dir: Path) -> StackInfo:
    info = read_info(state_dir)
    if info is None:
        raise StackError(f"no stack recorded in {state_dir}: start one with `make up` first")
    if INGEST_SERVICE not in info.services:
        raise StackError(f"the stack in {state_dir} runs no {INGEST_SERVICE} service")
    return info
