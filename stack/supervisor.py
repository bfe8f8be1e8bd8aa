"""The local stack's supervisor: a crashed service is replaced, as Cloud Run replaces a crashed instance.

``python -m stack.supervisor --state-dir DIR`` reads its plan on standard input (JSON: per service its command,
folder, environment and log file; stdin, not a file, so the environment never lands on disk), starts every service
in its own process group, writes each one's record (process_records.py), prints READY_LINE, and then watches:

1. A service whose process ends (a crash, an OOM kill, ``kill -9``) is logged with its exit code or signal; what is
   left of its process group (gunicorn's workers) is stopped, as Cloud Run discards the whole instance.
2. It is started again after a backoff that doubles with every crash in a row (RestartPolicy: 1 s, 2 s, 4 s, ...
   up to 30 s by default), and resets once a process has run ``stable_after_seconds``. Each restart is logged,
   counted in the record (``stack status`` shows it) and put into stack.json.
3. ``python -m stack restart NAME`` leaves a request file (request_restart); the supervisor stops that service
   gracefully and starts it again at once.

Why a process of its own rather than the terminal's ``up``: the same supervisor runs under ``make up`` in the
foreground and under ``make up DETACH=1``, where the command that started the stack has long returned; it is the
services' parent, so it learns how each one ended (only a parent can); it is recorded like every other process
(stack.json, ``processes/supervisor.json``), so ``down`` finds it. Stopping wins: ``down`` stops the supervisor
first and waits until it is gone, and only then the services, so nothing is restarted while the stack stops. On
SIGTERM the supervisor only stops watching: it never stops the services itself (``down`` does, all at once).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from stack import state
from stack.errors import StackError
from stack.process_records import ProcessRecord, new_record, read_record, write_record
from stack.processes import start_process, stop_groups

READY_LINE = "supervisor: watching"
REQUESTS_DIR = "requests"
POLL_SECONDS = 0.2
LEFTOVER_GRACE_SECONDS = 2.0  # a dead leader's workers: they notice the lost parent within a second or so


@dataclass(frozen=True)
class RestartPolicy:
    """How long a crashed service waits before it is started again: doubling per crash in a row, capped."""

    initial_seconds: float = 1.0
    max_seconds: float = 30.0
    # A process that ran this long was healthy: its crash starts a new series (back to initial_seconds).
    stable_after_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_seconds <= self.max_seconds:
            raise StackError(
                f"restart backoff: need 0 < initial ≤ max, got initial {self.initial_seconds:g} s, "
                f"max {self.max_seconds:g} s"
            )

    def __str__(self) -> str:
        return f"{self.initial_seconds:g},{self.max_seconds:g}"  # as `up --restart-backoff` takes it

    def delay(self, crashes_in_a_row: int) -> float:
        """The wait before restart number ``crashes_in_a_row`` (1-based) of one series."""
        return min(self.max_seconds, self.initial_seconds * 2 ** max(crashes_in_a_row - 1, 0))


def describe_exit(returncode: int) -> str:
    """How a process ended, as Popen reports it (a negative code is the signal that ended it)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
        return f"signal {-returncode} ({name})"
    return f"exit code {returncode}"


# --- requests from an operator (python -m stack restart NAME) --------------------------------------------------


def request_restart(state_dir: Path, name: str) -> Path:
    folder = state_dir / REQUESTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"restart-{name}"
    path.touch()
    return path


def _take_restart_requests(state_dir: Path) -> list[str]:
    folder = state_dir / REQUESTS_DIR
    names = []
    for path in sorted(folder.glob("restart-*")) if folder.is_dir() else ():
        names.append(path.name.removeprefix("restart-"))
        path.unlink(missing_ok=True)
    return names


# --- one supervised service ------------------------------------------------------------------------------------


@dataclass
class Supervised:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    append: bool = False  # the log is shared (instances of one service): never truncate it
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # monotonic
    crashes_in_a_row: int = 0
    restart_at: float | None = None  # monotonic; set while waiting out the backoff
    record: ProcessRecord | None = field(default=None, repr=False)

    @classmethod
    def from_plan(cls, entry: dict[str, Any]) -> Supervised:
        return cls(
            name=entry["name"],
            argv=list(entry["argv"]),
            cwd=Path(entry["cwd"]),
            env=dict(entry["env"]),
            log=Path(entry["log"]),
            append=bool(entry.get("append", False)),
        )


class Supervisor:
    def __init__(self, state_dir: Path, services: list[Supervised], policy: RestartPolicy) -> None:
        self.state_dir = state_dir
        self.services = {service.name: service for service in services}
        self.policy = policy
        self.stopping = False

    def stop(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag: a start in progress completes and is recorded, so `down` (which waits for this process to
        # be gone before it reads the records) stops it too.
        self.stopping = True

    def start_all(self) -> None:
        for service in self.services.values():
            self._start(service, first=True)

    def run(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            for service in self.services.values():
                if self.stopping:
                    break
                self._check(service, now)
            for name in _take_restart_requests(self.state_dir):
                if not self.stopping:
                    self._restart_on_request(name)
            time.sleep(POLL_SECONDS)
        log("stopping: no more restarts")

    def _check(self, service: Supervised, now: float) -> None:
        if service.restart_at is not None:
            if now >= service.restart_at:
                self._start(service)
            return
        if service.process is None or (code := service.process.poll()) is None:
            return
        ran = now - service.started_at
        if ran >= self.policy.stable_after_seconds:
            service.crashes_in_a_row = 0
        service.crashes_in_a_row += 1
        delay = self.policy.delay(service.crashes_in_a_row)
        pid, ended = service.process.pid, describe_exit(code)
        self._clear_group(service)
        record = self._record(service)
        self._write(service, replace(record, last_exit=ended, restart_at=time.time() + delay))
        log(
            f"{service.name} (pid {pid}) ended: {ended} after {ran:.1f} s; "
            f"restart {record.restarts + 1} in {delay:g} s (crash {service.crashes_in_a_row} in a row)"
        )
        service.restart_at = time.monotonic() + delay  # counted from the line above: the log shows the whole wait

    def _restart_on_request(self, name: str) -> None:
        service = self.services.get(name)
        if service is None:
            log(f"restart requested for {name!r}, which is not a service here; ignored")
            return
        process = service.process
        log(f"{name}: restart requested" + (f"; stopping pid {process.pid}" if process else ""))
        if process is not None and service.restart_at is None:
            try:
                stop_groups([process.pid])
            except StackError as exc:
                log(f"{name}: {exc}")
            process.poll()
            record = self._record(service)
            self._write(service, replace(record, last_exit="stopped on request (restart)"))
        service.crashes_in_a_row = 0  # an operator's restart starts afresh
        if not self.stopping:
            self._start(service)

    def _start(self, service: Supervised, *, first: bool = False) -> None:
        service.restart_at = None
        try:
            service.process = start_process(
                service.argv, log_path=service.log, cwd=service.cwd, env=service.env, append=service.append or not first
            )
        except StackError as exc:  # e.g. the executable went missing: counts as a crash
            if first:
                raise
            service.process = None
            service.crashes_in_a_row += 1
            delay = self.policy.delay(service.crashes_in_a_row)
            service.restart_at = time.monotonic() + delay
            log(f"{service.name}: {exc}; next try in {delay:g} s")
            return
        service.started_at = time.monotonic()
        pid = service.process.pid
        if first:
            self._write(service, new_record(service.name, pid))
            return
        record = self._record(service).restarted(pid)
        self._write(service, record)
        state.update_pid(self.state_dir, service.name, pid)
        log(f"{service.name} restarted: pid {pid} (restart {record.restarts})")

    def _clear_group(self, service: Supervised) -> None:
        """Stop what is left of a dead leader's process group, so the new process can take the port."""
        assert service.process is not None
        try:
            stop_groups([service.process.pid], grace=LEFTOVER_GRACE_SECONDS)
        except StackError as exc:
            log(f"{service.name}: {exc}")

    def _record(self, service: Supervised) -> ProcessRecord:
        if service.record is None:
            service.record = read_record(self.state_dir, service.name)
        assert service.record is not None, f"{service.name} has no record"
        return service.record

    def _write(self, service: Supervised, record: ProcessRecord) -> None:
        service.record = record
        write_record(self.state_dir, record)


def log(message: str) -> None:
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print(f"{stamp} {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.supervisor", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--backoff-initial", type=float, default=RestartPolicy.initial_seconds)
    parser.add_argument("--backoff-max", type=float, default=RestartPolicy.max_seconds)
    parser.add_argument("--stable-after", type=float, default=RestartPolicy.stable_after_seconds)
    args = parser.parse_args(argv)
    plan = json.load(sys.stdin)
    policy = RestartPolicy(args.backoff_initial, args.backoff_max, args.stable_after)
    supervisor = Supervisor(args.state_dir, [Supervised.from_plan(entry) for entry in plan["services"]], policy)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    supervisor.start_all()
    log(
        f"{READY_LINE} {', '.join(supervisor.services)} (restart backoff {policy.initial_seconds:g} s doubling "
        f"to {policy.max_seconds:g} s)"
    )
    supervisor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
