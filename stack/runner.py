"""The local stack as processes: the official emulators, fake-gcs-server, the bootstrap, and every service.

Usable from Python (the test suite's session fixture) and behind ``python -m stack``::

    info = Stack(state_dir, port_base=18085).up()   # -> StackInfo, also written to <state>/stack.json
    ...
    Stack(state_dir).down()                         # stops exactly the recorded pids

Start order: Pub/Sub and Firestore together (each JVM takes seconds); as soon as Pub/Sub answers, the
topology is created, so fake-gcs-server's notification topic exists before it can receive an upload; then
fake-gcs-server and the buckets; then the supervisor, which starts the services and restarts any that crashes
(stack/supervisor.py). If any step fails, what was started is stopped again.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import requests

from stack import bootstrap, scheduler, smtp_sink, state, supervisor
from stack.emulators import (
    REPO_ROOT,
    EmulatorPaths,
    fake_gcs_command,
    firestore_command,
    locate_emulators,
    pubsub_command,
)
from stack.errors import StackError
from stack.instances import instance_counts, log_name, supervision_plan
from stack.ports import DEFAULT_PORT_BASE, PortLayout, ensure_free
from stack.process_records import ProcessRecord, new_record, read_records, write_record
from stack.processes import (
    Probe,
    all_of,
    group_is_alive,
    http_answers,
    log_contains,
    log_tail,
    paused_groups,
    start_process,
    stop_groups,
    tcp_accepts,
    wait_until_ready,
)
from stack.seed import seed_catalog
from stack.services import (
    check_sources,
    compile_sources,
    functions_framework_executable,
)
from stack.state import StackInfo, process_kind
from stack.supervisor import RestartPolicy, request_restart
from stack.topology import Topology, load_topology

DEFAULT_PROJECT = "shop-local"
DEFAULT_STATE_DIR = REPO_ROOT / ".local"
# Generous: two JVMs starting side by side on a 2-core CI runner can take many seconds.
EMULATOR_READY_TIMEOUT = 120.0
SERVICE_READY_TIMEOUT = 60.0
RESTART_TIMEOUT = 60.0
LOCK_FILE = ".lock"
# Besides the services, what publishes to Pub/Sub: the scheduler (its calls start outbox sweeps) and
# fake-gcs-server (upload notifications).
NON_SERVICE_PUBLISHERS = ("scheduler", "storage")


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    kind: str  # "emulator" or "service"
    pid: int
    alive: bool
    address: str | None  # None while `up` has not finished
    answering: bool
    log: Path
    restarts: int | None = None  # services only: how often the supervisor (or an operator) replaced it
    last_exit: str | None = None  # how the process before this one ended
    restart_in: float | None = None  # seconds until a crashed service is started again (backoff), if waiting


class Stack:
    def __init__(
        self,
        state_dir: Path = DEFAULT_STATE_DIR,
        port_base: int = DEFAULT_PORT_BASE,
        project: str = DEFAULT_PROJECT,
        *,
        topology_path: Path | None = None,
        repo_root: Path = REPO_ROOT,
        restart_policy: RestartPolicy | None = None,
        instances: Mapping[str, int] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.port_base = port_base
        self.project = project
        self.topology_path = topology_path
        self.repo_root = repo_root
        self.restart_policy = restart_policy or RestartPolicy()
        self._instance_overrides = dict(instances or {})  # --instances; topology.yaml's counts otherwise
        self.instances: dict[str, int] = {}  # where more than one; known once `up` has read the topology
        self.logs_dir = self.state_dir / "logs"
        self.started_in_seconds: float | None = None
        # Children started by this object; kept so they are reaped here rather than warned about at exit.
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._supervised: list[str] = []  # what the supervisor started for this object: instances, then fronts

    # --- public API ---------------------------------------------------------------------------------------

    def up(self) -> StackInfo:
        """Start everything, wait until all of it answers, write stack.json and return what it describes."""
        began = time.monotonic()
        topology = load_topology(self.topology_path)
        check_sources(topology)
        self.instances = instance_counts(topology, self._instance_overrides)
        layout = PortLayout(self.port_base, tuple(topology.services), self.instances)
        with self._locked():
            self._refuse_if_running()
            ensure_free(layout)
            emulators = locate_emulators(self.repo_root)
            state.clear(self.state_dir)
            try:
                info = self._start_all(topology, layout, emulators)
            except BaseException:
                # Includes KeyboardInterrupt: never leave half a stack behind.
                self._stop_recorded()
                raise
        self.started_in_seconds = time.monotonic() - began
        return info

    def down(self) -> dict[str, int]:
        """Stop exactly the recorded processes and remove the records; returns the names and pids stopped.

        Works from the per-process records alone when stack.json is gone or corrupt.
        """
        with self._locked():
            return self._stop_recorded()

    def status(self) -> list[ProcessStatus]:
        ours = state.recorded_pids(self.state_dir)  # without pids reused by strangers since
        info = state.read_info(self.state_dir)
        pids = {**(dict(info.pids) if info else {}), **ours}
        if not pids:
            raise StackError(f"no stack recorded in {self.state_dir}; start one with `python -m stack up`")
        records = read_records(self.state_dir)
        return [
            self._status_of(name, pid, info, records.get(name), alive=name in ours and group_is_alive(pid))
            for name, pid in pids.items()
        ]

    def services(self) -> list[str]:
        """The names of the running stack's services."""
        info = self.info()
        if info is not None:
            return list(info.services)
        return [name for name in state.recorded_pids(self.state_dir) if process_kind(name) == "service"]

    def restart_service(self, name: str, timeout: float = RESTART_TIMEOUT) -> list[tuple[str, int, int]]:
        """Have the supervisor restart a service now (an operator's restart), or one instance of it (``NAME.N``);
        a service with several instances is restarted one instance after the other, so it keeps answering.

        Returns (process, old pid, new pid) for each process replaced, once the new one answers.
        """
        info = self.info()
        pids = state.recorded_pids(self.state_dir)
        instances = info.instances if info else {}
        names = [*self.services(), *(f"{s}.{n}" for s, urls in instances.items() for n in range(1, len(urls) + 1))]
        if name not in names:
            what = (
                f"{name} is an emulator or helper, not a service"
                if name in pids
                else f"no service named {name!r} in the stack recorded in {self.state_dir}"
            )
            raise StackError(f"{what}; services: {', '.join(names) or '(none)'}")
        supervisor = pids.get("supervisor")
        if supervisor is None or not group_is_alive(supervisor):
            raise StackError(
                f"the stack's supervisor is not running, so nothing can restart {name}; "
                f"see {self._log('supervisor')}, then `python -m stack down` and `up` again"
            )
        targets = [f"{name}.{n}" for n in range(1, len(instances[name]) + 1)] if name in instances else [name]
        return [self._restart_one(target, info, timeout) for target in targets]

    def _restart_one(self, name: str, info: StackInfo | None, timeout: float) -> tuple[str, int, int]:
        old = state.recorded_pids(self.state_dir)[name]
        request = request_restart(self.state_dir, name)
        address = info.address(name) if info else None
        port = int(address.rsplit(":", 1)[1]) if address else None

        def restarted() -> bool:
            record = read_records(self.state_dir).get(name)
            return (
                not request.exists()
                and record is not None
                and record.pid != old
                and record.restart_at is None
                and (port is None or http_answers(port, "/robots.txt"))
            )

        deadline = time.monotonic() + timeout
        while not restarted():
            if time.monotonic() > deadline:
                raise StackError(
                    f"{name} was not restarted and answering within {timeout:.0f} s; "
                    f"last lines of {self._log('supervisor')}:\n{log_tail(self._log('supervisor'))}"
                )
            time.sleep(0.1)
        return name, old, state.recorded_pids(self.state_dir)[name]

    def restart_pubsub(self) -> None:
        """Stop the Pub/Sub emulator and start it again on the same port, with the topology re-created.

        The emulator keeps everything in memory, so a restart loses topics, subscriptions and unacked
        messages, as an outage would; tests use this to show the outbox sweeper republishes what was missed.
        """
        info = self.info()
        if info is None:
            raise StackError(f"no stack recorded in {self.state_dir}")
        self.stop_pubsub()
        self.start_pubsub()

    def stop_pubsub(self) -> None:
        info = self.info()
        if info is None:
            raise StackError(f"no stack recorded in {self.state_dir}")
        stop_groups([state.recorded_pids(self.state_dir)["pubsub"]])
        if "pubsub" in self._children:
            self._children.pop("pubsub").poll()

    def start_pubsub(self) -> None:
        info = self.info()
        if info is None:
            raise StackError(f"no stack recorded in {self.state_dir}")
        topology = load_topology(self.topology_path)
        port = int(info.emulators["pubsub"].rsplit(":", 1)[1])
        emulators = locate_emulators(self.repo_root)
        self._log("pubsub").unlink(missing_ok=True)  # the ready line must come from the new process
        self._start("pubsub", pubsub_command(emulators.pubsub, port), self.state_dir, dict(os.environ))
        self._wait_java("pubsub", port, "Server started, listening on")
        # A message published to a topic whose subscriptions are not there yet reaches no one, and the restarted
        # emulator has topics before it has subscriptions: the processes that publish (an outbox sweep, a retry,
        # an upload notification) wait, paused, until the whole topology is back. In the cloud an outage never
        # deletes topics and subscriptions; only this restart does.
        publishers = [
            pid
            for name, pid in state.recorded_pids(self.state_dir).items()
            if process_kind(name) in ("service", "instance") or name in NON_SERVICE_PUBLISHERS
        ]
        with paused_groups(publishers):
            bootstrap.create_pubsub_topology(info.emulators["pubsub"], topology, self.project, info.services)
        state.update_pid(self.state_dir, "pubsub", self._children["pubsub"].pid)

    def stop_firestore(self) -> Path:
        """Export the Firestore emulator's data, then stop it; returns the export's metadata file.

        The emulator keeps its data in memory, and (seen with the SDK's emulator) ``--export-on-exit`` does
        nothing when it is stopped by a signal, so the data is exported first through the emulator's REST
        endpoint (``POST /emulator/v1/projects/P:export``). Writes that land between the export and the stop
        are lost, as in a crash: callers that need none lost cut their clients off first (the reliability
        suite does, with a TCP proxy).
        """
        info = self._running()
        export_dir = self.state_dir / "firestore-export" / f"{time.time_ns()}"
        export_dir.mkdir(parents=True)
        response = requests.post(
            f"http://{info.emulators['firestore']}/emulator/v1/projects/{info.project}:export",
            json={"database": f"projects/{info.project}/databases/(default)", "export_directory": str(export_dir)},
            timeout=60,
        )
        if response.status_code != 200:
            raise StackError(f"Firestore emulator export failed ({response.status_code}): {response.text[:300]}")
        metadata = next(export_dir.rglob("*.overall_export_metadata"), None)
        if metadata is None:
            raise StackError(f"Firestore emulator export wrote no metadata file under {export_dir}")
        stop_groups([state.recorded_pids(self.state_dir)["firestore"]])
        if "firestore" in self._children:
            self._children.pop("firestore").poll()
        return metadata

    def start_firestore(self, import_data: Path | None = None) -> None:
        """Start the Firestore emulator again on its ports, from an export (stop_firestore's) if given."""
        info = self._running()
        # The recorded Pub/Sub port is the stack's port base (stack/ports.py), whatever this object was given.
        layout = PortLayout(int(info.emulators["pubsub"].rsplit(":", 1)[1]), tuple(info.services))
        port = layout.firestore
        emulators = locate_emulators(self.repo_root)
        command = firestore_command(
            emulators.firestore,
            port,
            layout.firestore_websocket,
            layout.firestore_webchannel,
            import_data=import_data,
        )
        self._log("firestore").unlink(missing_ok=True)  # the ready line must come from the new process
        self._start("firestore", command, self.state_dir, dict(os.environ))
        self._wait_java("firestore", port, "Dev App Server is now running")
        state.update_pid(self.state_dir, "firestore", self._children["firestore"].pid)

    def _running(self) -> StackInfo:
        info = self.info()
        if info is None:
            raise StackError(f"no stack recorded in {self.state_dir}")
        return info

    def info(self) -> StackInfo | None:
        """The record of the running stack, if there is one."""
        return state.read_info(self.state_dir)

    def __enter__(self) -> StackInfo:
        return self.up()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    # --- starting -----------------------------------------------------------------------------------------

    def _start_all(self, topology: Topology, layout: PortLayout, emulators: EmulatorPaths) -> StackInfo:
        addresses = {
            "pubsub": f"127.0.0.1:{layout.pubsub}",
            "firestore": f"127.0.0.1:{layout.firestore}",
            "storage": f"http://127.0.0.1:{layout.storage}",
            "smtp": f"127.0.0.1:{layout.smtp}",
        }
        service_urls = {name: f"http://127.0.0.1:{layout.service(name)}" for name in topology.services}
        instance_urls = {
            name: tuple(f"http://127.0.0.1:{layout.instance(name, n)}" for n in range(1, count + 1))
            for name, count in self.instances.items()
        }
        self._start_emulators(topology, layout, emulators, addresses, service_urls)
        self._start_services(topology, layout, addresses)
        self._start_scheduler(topology, service_urls)
        # Under the record lock: a service the supervisor restarts meanwhile gets its new pid into stack.json.
        with state.record_lock(self.state_dir):
            info = StackInfo.for_topology(
                topology,
                self.project,
                emulators=addresses,
                services=service_urls,
                pids=self._pids(),
                logs=self.logs_dir,
                state_dir=self.state_dir,
                instances=instance_urls,
            )
            state.write_info(info)
        return info

    def _start_emulators(
        self,
        topology: Topology,
        layout: PortLayout,
        emulators: EmulatorPaths,
        addresses: Mapping[str, str],
        service_urls: Mapping[str, str],
    ) -> None:
        env = dict(os.environ)
        self._start("pubsub", pubsub_command(emulators.pubsub, layout.pubsub), self.state_dir, env)
        firestore = firestore_command(
            emulators.firestore, layout.firestore, layout.firestore_websocket, layout.firestore_webchannel
        )
        self._start("firestore", firestore, self.state_dir, env)

        self._wait_java("pubsub", layout.pubsub, "Server started, listening on")
        # Topics first: fake-gcs-server drops notifications for a topic that doesn't exist yet.
        bootstrap.create_pubsub_topology(addresses["pubsub"], topology, self.project, service_urls)

        uploads = topology.uploads
        storage = fake_gcs_command(emulators.fake_gcs, layout.storage, self.project, uploads.notify_topic, uploads.name)
        self._start("storage", storage, self.state_dir, {**env, "PUBSUB_EMULATOR_HOST": addresses["pubsub"]})
        self._wait("storage", functools.partial(http_answers, layout.storage, "/storage/v1/b"), EMULATOR_READY_TIMEOUT)
        bootstrap.create_buckets(addresses["storage"], topology, self.project)

        smtp = [sys.executable, "-m", "stack.smtp_sink", "--port", str(layout.smtp), "--maildir", str(self.mail_dir)]
        self._start("smtp", smtp, self.repo_root, env)
        self._wait(
            "smtp",
            all_of(log_contains(self._log("smtp"), smtp_sink.READY_LINE), functools.partial(tcp_accepts, layout.smtp)),
            EMULATOR_READY_TIMEOUT,
        )

        self._wait_java("firestore", layout.firestore, "Dev App Server is now running")
        seed_catalog(addresses["firestore"], self.project)

    def _start_services(self, topology: Topology, layout: PortLayout, addresses: Mapping[str, str]) -> None:
        """The supervisor starts the services (it is their parent, so it learns how each one ends); this waits
        until each answers, and fails as before if one ends first."""
        compile_sources(topology)
        plan = supervision_plan(
            topology,
            layout,
            executable=functions_framework_executable(),
            project=self.project,
            emulators=addresses,
            base_env=os.environ,
            logs_dir=self.logs_dir,
            repo_root=self.repo_root,
        )
        for entry in plan:
            if entry.get("append"):  # a log the instances share: emptied once, here
                Path(entry["log"]).parent.mkdir(parents=True, exist_ok=True)
                Path(entry["log"]).write_bytes(b"")
        self._supervised = [entry["name"] for entry in plan]
        policy = self.restart_policy
        argv = [
            sys.executable, "-m", "stack.supervisor", "--state-dir", str(self.state_dir),
            "--backoff-initial", str(policy.initial_seconds),
            "--backoff-max", str(policy.max_seconds),
            "--stable-after", str(policy.stable_after_seconds),
        ]  # fmt: skip
        self._start("supervisor", argv, self.repo_root, dict(os.environ), stdin=json.dumps({"services": plan}).encode())
        self._wait("supervisor", log_contains(self._log("supervisor"), supervisor.READY_LINE), SERVICE_READY_TIMEOUT)
        for name in self._supervised:
            port = layout.instance(*_split(name)) if process_kind(name) == "instance" else layout.service(name)
            self._wait_service(name, port)

    def _wait_service(self, name: str, port: int) -> None:
        # functions-framework answers /robots.txt itself (404) without calling the function, so the probe
        # doesn't show up in the service's logs as a malformed delivery.
        answers = functools.partial(http_answers, port, "/robots.txt")
        deadline = time.monotonic() + SERVICE_READY_TIMEOUT
        while not answers():
            record = read_records(self.state_dir).get(name)
            if record is not None and record.last_exit is not None:
                raise StackError(
                    f"{name} exited before it was ready ({record.last_exit}); "
                    f"last lines of {self._log(name)}:\n{log_tail(self._log(name))}"
                )
            if not group_is_alive(self._children["supervisor"].pid):
                raise StackError(
                    f"the supervisor exited before {name} was ready; "
                    f"last lines of {self._log('supervisor')}:\n{log_tail(self._log('supervisor'))}"
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"{name} was not ready after {SERVICE_READY_TIMEOUT:.0f} s; "
                    f"last lines of {self._log(name)}:\n{log_tail(self._log(name))}"
                )
            time.sleep(0.1)

    def _start_scheduler(self, topology: Topology, service_urls: Mapping[str, str]) -> None:
        """Cloud Scheduler's local stand-in, calling each schedule's path on its service."""
        if not topology.schedules:
            return
        jobs = [
            f"{s.name}={service_urls[s.service]}{s.path}@{s.local_every_seconds}" for s in topology.schedules.values()
        ]
        argv = [sys.executable, "-m", "stack.scheduler", *(arg for job in jobs for arg in ("--job", job))]
        self._start("scheduler", argv, self.repo_root, dict(os.environ))
        self._wait("scheduler", log_contains(self._log("scheduler"), scheduler.READY_LINE), SERVICE_READY_TIMEOUT)

    @property
    def mail_dir(self) -> Path:
        return self.state_dir / "mail"

    def _start(
        self, name: str, argv: list[str], cwd: Path, env: Mapping[str, str], *, stdin: bytes | None = None
    ) -> None:
        self._children[name] = start_process(argv, log_path=self._log(name), cwd=cwd, env=env, stdin=stdin)
        # Recorded at once, so `down` can find it even if this `up` is killed before it finishes.
        write_record(self.state_dir, new_record(name, self._children[name].pid))

    def _wait(self, name: str, ready: Probe, timeout: float, *, failed: Probe | None = None) -> None:
        wait_until_ready(self._children[name], name, self._log(name), ready, timeout, failed=failed)

    def _wait_java(self, name: str, port: int, ready_line: str) -> None:
        log = self._log(name)
        # The line says the server is up; the port check guards against a stale line.
        ready = all_of(log_contains(log, ready_line), functools.partial(tcp_accepts, port))
        # The Pub/Sub emulator does not exit when its port is taken (seen with 0.8.20): it logs a BindException
        # and idles. Without this, a port grabbed between our check and its bind would cost the whole timeout.
        failed = log_contains(log, "java.net.BindException")
        self._wait(name, ready, EMULATOR_READY_TIMEOUT, failed=failed)

    # --- stopping and inspecting --------------------------------------------------------------------------

    def _stop_recorded(self) -> dict[str, int]:
        """Stop every recorded process: the supervisor first, and only once it is gone the rest (re-read: it may
        have replaced a service just before it stopped), so nothing is restarted while the stack stops."""
        first = state.recorded_pids(self.state_dir)
        if "supervisor" in first:
            stop_groups([first["supervisor"]])
        rest = {name: pid for name, pid in state.recorded_pids(self.state_dir).items() if name != "supervisor"}
        stop_groups(rest.values())
        for name in list(self._children):
            self._children.pop(name).poll()  # mark reaped children as done
        state.clear(self.state_dir)
        return {**first, **rest}

    def _refuse_if_running(self) -> None:
        live = {name: pid for name, pid in state.recorded_pids(self.state_dir).items() if group_is_alive(pid)}
        if live:
            running = ", ".join(f"{name} (pid {pid})" for name, pid in live.items())
            raise StackError(
                f"a stack is already running from {self.state_dir}: {running}; "
                f"stop it with `python -m stack down --state-dir {self.state_dir}`"
            )

    def _status_of(
        self, name: str, pid: int, info: StackInfo | None, record: ProcessRecord | None, *, alive: bool
    ) -> ProcessStatus:
        address = info.address(name) if info else None
        port = int(address.rsplit(":", 1)[1]) if address else None
        if info is not None and address is None:
            address, port = "(calls out only)", None
        kind = "front" if info is not None and name in info.instances else process_kind(name)
        return ProcessStatus(
            name=name,
            kind=kind,
            pid=pid,
            alive=alive,
            address=address,
            answering=tcp_accepts(port) if port is not None else alive,
            log=self._log(name),
            restarts=record.restarts if record and kind in ("service", "instance", "front") else None,
            last_exit=record.last_exit if record else None,
            restart_in=max(record.restart_at - time.time(), 0.0) if record and record.restart_at else None,
        )

    def _pids(self) -> dict[str, int]:
        """This stack's processes, in start order: this object's children, and the services the supervisor runs."""
        records = read_records(self.state_dir)
        ordered = {}
        for name, process in self._children.items():
            ordered[name] = process.pid
            if name == "supervisor":  # what it started, in its plan's order
                ordered.update({other: records[other].pid for other in self._supervised if other in records})
        return ordered

    def _log(self, name: str) -> Path:
        info = None if self.instances else self.info()
        fronted = self.instances or (info.instances if info else {})
        return self.logs_dir / f"{log_name(name, fronted)}.log"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One `up` or `down` at a time per state dir, across processes."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / LOCK_FILE).open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def _split(instance: str) -> tuple[str, int]:
    service, number = instance.rsplit(".", 1)
    return service, int(number)
