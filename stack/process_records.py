"""One small file per process the stack started: ``<state>/processes/<name>.json``.

Whoever starts a process writes its record at once: the runner for the emulators and helpers, the supervisor for
the services (again at every restart). So the processes of a stack can be found and stopped even when stack.json
is gone or corrupt, or ``up`` was killed half-way, and ``status`` can show how often a service was restarted and
why it last ended. Each write replaces the file whole (write, then rename), so a reader never sees half of one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from stack.processes import start_time

RECORDS_DIR = "processes"
# /proc gives a process's start time in clock ticks; the record keeps what /proc said, so only rounding differs.
SAME_START_SLACK_SECONDS = 0.5


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int  # also its process group: every process of the stack leads its own
    started: float | None  # the process's start time (epoch s, from /proc): tells our pid from a later reuse
    restarts: int = 0
    last_exit: str | None = None  # how the previous process of this name ended, e.g. "signal 9 (SIGKILL)"
    restart_at: float | None = None  # epoch s; set while a crashed service waits out its backoff

    def is_ours(self) -> bool:
        """Whether ``pid`` still names the process this record was written for (not a reuse after it ended)."""
        now = start_time(self.pid)
        if now is None or self.started is None:
            return True  # gone, or no /proc to tell: signalling a gone group is harmless
        return abs(now - self.started) <= SAME_START_SLACK_SECONDS

    def restarted(self, pid: int) -> ProcessRecord:
        """The record of the process that replaces this one."""
        return replace(self, pid=pid, started=start_time(pid), restarts=self.restarts + 1, restart_at=None)


def new_record(name: str, pid: int) -> ProcessRecord:
    return ProcessRecord(name=name, pid=pid, started=start_time(pid))


def records_dir(state_dir: Path) -> Path:
    return state_dir / RECORDS_DIR


def write_record(state_dir: Path, record: ProcessRecord) -> None:
    folder = records_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.name}.json"
    tmp = folder / f".{record.name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(record)) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_record(state_dir: Path, name: str) -> ProcessRecord | None:
    return _parse(records_dir(state_dir) / f"{name}.json")


def read_records(state_dir: Path) -> dict[str, ProcessRecord]:
    """Every readable record, oldest process first (the order the stack started them in)."""
    folder = records_dir(state_dir)
    if not folder.is_dir():
        return {}
    records = [record for path in folder.glob("*.json") if (record := _parse(path)) is not None]
    records.sort(key=lambda record: (record.started or 0.0, record.name))
    return {record.name: record for record in records}


def clear_records(state_dir: Path) -> None:
    folder = records_dir(state_dir)
    for path in folder.glob("*.json") if folder.is_dir() else ():
        path.unlink(missing_ok=True)


def _parse(path: Path) -> ProcessRecord | None:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        record = ProcessRecord(**data)
    except (OSError, ValueError, TypeError):
        return None  # gone meanwhile, or not a record: skipped, never guessed at
    if not isinstance(record.pid, int) or record.pid <= 1:
        return None
    return record
