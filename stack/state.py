"""The on-disk record of a running stack: ``<state>/stack.json``, and one record per process (process_records.py).

stack.json is the public contract (tests, scripts and the CLI read it); it is written only once everything
answers, and its pids are kept current when a process is replaced (a service restarted by the supervisor, an
emulator restarted by a test). The per-process records are written the moment each process starts, so a stack
whose ``up`` was killed half-way, or whose stack.json is gone or corrupt, can still be found and stopped by ``down``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from stack.process_records import clear_records, read_records
from stack.processes import start_time

if TYPE_CHECKING:
    from stack.topology import Topology

STACK_FILE = "stack.json"
RECORD_LOCK_FILE = ".record.lock"
EMULATOR_NAMES = ("pubsub", "firestore", "storage", "smtp")
HELPER_NAMES = ("scheduler", "supervisor")
REUSE_SLACK_SECONDS = 2.0  # /proc's boot time has 1 s resolution


def process_kind(name: str) -> str:
    """emulator, helper, service, or instance (one of several of a service; the service's name is its front)."""
    if name in EMULATOR_NAMES:
        return "emulator"
    if name in HELPER_NAMES:
        return "helper"
    return "instance" if "." in name else "service"  # service names never hold a dot (topology.py)


def instance_name(service: str, number: int) -> str:
    return f"{service}.{number}"


@dataclass(frozen=True)
class StackInfo:
    """What a running stack offers; mirrors stack.json field for field."""

    project: str
    emulators: Mapping[str, str]  # pubsub/firestore: "127.0.0.1:P"; storage: "http://127.0.0.1:P"
    services: Mapping[str, str]  # name -> base URL
    topics: Mapping[str, str]  # topic id -> full resource path
    subscriptions: Mapping[str, str]  # subscription id -> full resource path
    buckets: Mapping[str, str]  # role -> bucket name
    pids: Mapping[str, int]  # process name (emulator or service) -> pid, which is also its process group
    logs: Path
    state_dir: Path = field(compare=False)  # where the record lives; not itself in stack.json
    # service -> its instances' base URLs, for a service that runs several (its URL in `services` is then its front)
    instances: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def client_env(self) -> dict[str, str]:
        """The environment that points Google client libraries at this stack."""
        return {
            "GOOGLE_CLOUD_PROJECT": self.project,
            "PUBSUB_EMULATOR_HOST": self.emulators["pubsub"],
            "FIRESTORE_EMULATOR_HOST": self.emulators["firestore"],
            "STORAGE_EMULATOR_HOST": self.emulators["storage"],
        }

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def address(self, name: str) -> str | None:
        """Where a process listens; None for helpers that only call out (the scheduler)."""
        if process_kind(name) == "instance":
            service, number = name.rsplit(".", 1)
            urls = self.instances.get(service, ())
            return urls[int(number) - 1] if number.isdigit() and 0 < int(number) <= len(urls) else None
        return self.emulators.get(name) or self.services.get(name)

    @property
    def mail_dir(self) -> Path:
        """Where the SMTP sink saves each message it receives, as a .eml file."""
        return self.state_dir / "mail"

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "emulators": dict(self.emulators),
            "services": dict(self.services),
            "instances": {service: list(urls) for service, urls in self.instances.items()},
            "topics": dict(self.topics),
            "subscriptions": dict(self.subscriptions),
            "buckets": dict(self.buckets),
            "pids": dict(self.pids),
            "logs": str(self.logs),
            "mail": str(self.mail_dir),
        }

    @classmethod
    def for_topology(
        cls,
        topology: Topology,
        project: str,
        *,
        emulators: Mapping[str, str],
        services: Mapping[str, str],
        pids: Mapping[str, int],
        logs: Path,
        state_dir: Path,
        instances: Mapping[str, tuple[str, ...]] | None = None,
    ) -> StackInfo:
        """A stack running ``topology`` in ``project``: its topics, subscriptions and buckets named from it."""
        from stack.bootstrap import subscription_path, topic_path  # the Pub/Sub client comes with it: on use only

        subscriptions = [*topology.subscriptions, *(pull.name for pull in topology.dead_letter_pulls)]
        return cls(
            project=project,
            emulators=MappingProxyType(dict(emulators)),
            services=MappingProxyType(dict(services)),
            topics=MappingProxyType({topic: topic_path(project, topic) for topic in topology.topics}),
            subscriptions=MappingProxyType({name: subscription_path(project, name) for name in subscriptions}),
            buckets=MappingProxyType({role: bucket.name for role, bucket in topology.buckets.items()}),
            pids=MappingProxyType(dict(pids)),
            logs=logs,
            state_dir=state_dir,
            instances=MappingProxyType(dict(instances or {})),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any], state_dir: Path) -> StackInfo:
        return cls(
            project=data["project"],
            emulators=MappingProxyType(dict(data["emulators"])),
            services=MappingProxyType(dict(data["services"])),
            topics=MappingProxyType(dict(data["topics"])),
            subscriptions=MappingProxyType(dict(data["subscriptions"])),
            buckets=MappingProxyType(dict(data["buckets"])),
            pids=MappingProxyType({name: int(pid) for name, pid in data["pids"].items()}),
            logs=Path(data["logs"]),
            state_dir=state_dir,
            instances=MappingProxyType({name: tuple(urls) for name, urls in data.get("instances", {}).items()}),
        )


def read_info(state_dir: Path) -> StackInfo | None:
    data = _read_json(state_dir / STACK_FILE)
    if data is None:
        return None
    try:
        return StackInfo.from_json(data, state_dir)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # not a record this version wrote; its pids still count via recorded_pids()


def write_info(info: StackInfo) -> None:
    """Write stack.json; callers that compose its pids from the records hold ``record_lock`` around both."""
    _write_json(info.state_dir / STACK_FILE, info.to_json())


@contextlib.contextmanager
def record_lock(state_dir: Path) -> Iterator[None]:
    """One writer of stack.json at a time across processes (``up``, the supervisor, a test restarting an emulator)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / RECORD_LOCK_FILE).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def update_pid(state_dir: Path, name: str, pid: int) -> None:
    """Put a replaced process's pid into stack.json, if there is one yet (``up`` writes it last)."""
    with record_lock(state_dir):
        data = _read_json(state_dir / STACK_FILE)
        if data is None or not isinstance(data.get("pids"), dict):
            return
        data["pids"][name] = pid
        _write_json(state_dir / STACK_FILE, data)


def recorded_pids(state_dir: Path) -> dict[str, int]:
    """Every pid the stack's records name: stack.json's, and the per-process records (which win: they are
    rewritten at every restart, and they are there even when stack.json is not).

    A pid whose process started after the record was written is not ours but a reuse (e.g. after a reboot),
    and is left out so that `down` never signals a stranger.
    """
    pids: dict[str, int] = {}
    path = state_dir / STACK_FILE
    with contextlib.suppress(FileNotFoundError):
        written = path.stat().st_mtime
        recorded = (_read_json(path) or {}).get("pids")
        for key, pid in recorded.items() if isinstance(recorded, dict) else ():
            if isinstance(pid, int) and pid > 1 and not _started_after(pid, written):
                pids[key] = pid
    for name, record in read_records(state_dir).items():
        if record.is_ours():
            pids[name] = record.pid
        else:
            pids.pop(name, None)
    return pids


def _started_after(pid: int, moment: float) -> bool:
    started = start_time(pid)
    return started is not None and started > moment + REUSE_SLACK_SECONDS


def clear(state_dir: Path) -> None:
    (state_dir / STACK_FILE).unlink(missing_ok=True)
    clear_records(state_dir)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # missing, or not JSON: no record (`up` then overwrites it)
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    # Write-then-rename so a reader never sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
