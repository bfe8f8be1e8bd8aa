"""The stack runner against the real emulators, with a throwaway functions-framework app as the only service.

One stack for the module (a JVM start costs seconds); the test that stops it runs last.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1

from stack.bootstrap import create_pubsub_topology, pubsub_admin_clients, storage_client
from stack.errors import StackError
from stack.ports import PortLayout, find_free_port_base
from stack.process_records import ProcessRecord, new_record, write_record
from stack.processes import group_is_alive, paused_groups, port_is_free, stop_groups
from stack.runner import Stack
from stack.state import StackInfo
from stack.topology import Topology, load_topology

pytestmark = pytest.mark.integration

PROJECT = "stack-runner-test"
DELIVERY_TIMEOUT = 20.0

# Records every delivery (body + the environment the runner gave it) as one JSON file in ./inbox.
APP = textwrap.dedent(
    """
    import json, os, pathlib, uuid

    INBOX = pathlib.Path(__file__).parent / "inbox"
    ENV = ("GOOGLE_CLOUD_PROJECT", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
           "K_SERVICE", "TOPIC_RUNNER_EVENTS", "BUCKET_UPLOADS", "BUCKET_RENDITIONS", "PYTHONUNBUFFERED")

    def handle(request):
        INBOX.mkdir(exist_ok=True)
        record = {"body": request.get_json(silent=True), "env": {k: os.environ.get(k) for k in ENV}}
        tmp = INBOX / f".{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(record))
        tmp.rename(INBOX / f"{uuid.uuid4().hex}.json")  # whole files only
        return "", 204
    """
)

TOPOLOGY = textwrap.dedent(
    """
    defaults:
      subscription:
        ack_deadline_seconds: 10
        max_delivery_attempts: 5
        retry_minimum_backoff_seconds: 1
        retry_maximum_backoff_seconds: 5
        message_retention_seconds: 600
    services:
      recorder:
        source: app
        target: handle
        signature_type: http
        request_timeout_seconds: 10
        publishes: [runner-events]
    topics:
      runner-events: {description: the bus}
      runner-uploads: {description: upload notifications}
      runner-events-dead-letter: {dead_letter: true}
    subscriptions:
      recorder-runner-events:
        topic: runner-events
        push_to: recorder
        filter: 'attributes."ce-type" = "test.v1"'
        dead_letter_topic: runner-events-dead-letter
        max_delivery_attempts: 7
        enable_message_ordering: true
      recorder-runner-uploads:
        topic: runner-uploads
        push_to: recorder
        dead_letter_topic: runner-events-dead-letter
    buckets:
      uploads: {name: runner-uploads, notify_topic: runner-uploads}
      renditions: {name: runner-renditions}
    """
)


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runner")
    (root / "app").mkdir()
    (root / "app" / "main.py").write_text(APP)
    (root / "topology.yaml").write_text(TOPOLOGY)
    return root


@pytest.fixture(scope="module")
def topology(project_dir: Path) -> Topology:
    return load_topology(project_dir / "topology.yaml")


@pytest.fixture(scope="module")
def runner(project_dir: Path) -> Iterator[Stack]:
    stack = Stack(project_dir / "state", find_free_port_base(1), PROJECT, topology_path=project_dir / "topology.yaml")
    stack.up()
    try:
        yield stack
    finally:
        stack.down()  # a no-op when the last test already stopped it


@pytest.fixture(scope="module")
def info(runner: Stack) -> StackInfo:
    recorded = runner.info()
    assert recorded is not None
    return recorded


def _inbox(project_dir: Path) -> list[dict[str, Any]]:
    inbox = project_dir / "app" / "inbox"
    return [json.loads(path.read_text()) for path in sorted(inbox.glob("*.json"))] if inbox.is_dir() else []


def _wait_for_delivery(project_dir: Path, matches: Any) -> dict[str, Any]:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while time.monotonic() < deadline:
        found = [record for record in _inbox(project_dir) if matches(record["body"] or {})]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no matching delivery within {DELIVERY_TIMEOUT} s; inbox: {_inbox(project_dir)}")


@contextlib.contextmanager
def _listening_on(port: int) -> Iterator[None]:
    with socket.socket() as squatter:
        # SO_REUSEADDR like any server: TIME_WAIT leftovers of an earlier stack on the port don't block it.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        yield


def _assert_ports_free(layout: PortLayout) -> None:
    taken = {user: port for user, port in layout.all().items() if not port_is_free(port)}
    if taken and shutil.which("ss"):  # who holds them, to debug a failure
        sockets = subprocess.run(["ss", "-tanp"], capture_output=True, text=True, check=False).stdout
        pytest.fail(f"still taken: {taken}\n{sockets}")
    assert not taken


def test_stack_json_describes_the_running_stack(runner: Stack, project_dir: Path) -> None:
    record = json.loads((project_dir / "state" / "stack.json").read_text())
    base = runner.port_base
    assert record == {
        "project": PROJECT,
        "emulators": {
            "pubsub": f"127.0.0.1:{base}",
            "firestore": f"127.0.0.1:{base + 1}",
            "storage": f"http://127.0.0.1:{base + 2}",
            "smtp": f"127.0.0.1:{base + 5}",
        },
        "services": {"recorder": f"http://127.0.0.1:{base + 10}"},
        "instances": {},  # one instance: the service runs on its own port, no front
        "topics": {
            name: f"projects/{PROJECT}/topics/{name}"
            for name in ("runner-events", "runner-uploads", "runner-events-dead-letter")
        },
        "subscriptions": {
            name: f"projects/{PROJECT}/subscriptions/{name}"
            for name in ("recorder-runner-events", "recorder-runner-uploads", "runner-events-dead-letter-pull")
        },
        "buckets": {"uploads": "runner-uploads", "renditions": "runner-renditions"},
        "pids": record["pids"],
        "logs": str(project_dir / "state" / "logs"),
        "mail": str(project_dir / "state" / "mail"),
    }
    assert list(record["pids"]) == ["pubsub", "firestore", "storage", "smtp", "supervisor", "recorder"]
    assert all(group_is_alive(pid) for pid in record["pids"].values())
    assert all((project_dir / "state" / "logs" / f"{name}.log").is_file() for name in record["pids"])


def test_service_sources_are_byte_compiled_as_in_the_images(runner: Stack, project_dir: Path) -> None:
    # Python reads a .pyc only if its header records the source's current mtime and size.
    source = project_dir / "app" / "main.py"
    compiled = Path(importlib.util.cache_from_source(str(source)))
    assert compiled.is_file(), "the stack should compile service sources even under PYTHONDONTWRITEBYTECODE"
    header = compiled.read_bytes()[:16]
    assert int.from_bytes(header[8:12], "little") == int(source.stat().st_mtime)
    assert int.from_bytes(header[12:16], "little") == source.stat().st_size


def test_status_reports_every_process_alive_and_answering(runner: Stack) -> None:
    statuses = runner.status()
    assert [s.name for s in statuses] == ["pubsub", "firestore", "storage", "smtp", "supervisor", "recorder"]
    assert all(s.alive and s.answering for s in statuses), statuses


def test_subscriptions_carry_the_topology_settings(info: StackInfo, topology: Topology) -> None:
    _, subscriber = pubsub_admin_clients(info.emulators["pubsub"])
    pushed = subscriber.get_subscription(subscription=info.subscriptions["recorder-runner-events"])
    assert pushed.push_config.push_endpoint == info.services["recorder"] + "/"
    assert pushed.filter == 'attributes."ce-type" = "test.v1"'
    assert pushed.ack_deadline_seconds == 10
    assert pushed.dead_letter_policy.dead_letter_topic == info.topics["runner-events-dead-letter"]
    assert pushed.dead_letter_policy.max_delivery_attempts == 7  # the subscription's own value beats the default
    assert (pushed.retry_policy.minimum_backoff.seconds, pushed.retry_policy.maximum_backoff.seconds) == (1, 5)
    assert pushed.message_retention_duration.seconds == 600
    assert pushed.enable_message_ordering
    unordered = subscriber.get_subscription(subscription=info.subscriptions["recorder-runner-uploads"])
    assert not unordered.enable_message_ordering
    pull = subscriber.get_subscription(subscription=info.subscriptions["runner-events-dead-letter-pull"])
    assert pull.topic == info.topics["runner-events-dead-letter"]
    assert not pull.push_config.push_endpoint
    # Idempotent: running the bootstrap again over the live topology is fine.
    create_pubsub_topology(info.emulators["pubsub"], topology, PROJECT, dict(info.services))


def test_published_message_is_pushed_to_the_service_with_its_environment(
    info: StackInfo, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", info.emulators["pubsub"])
    publisher = pubsub_v1.PublisherClient()
    publisher.publish(info.topics["runner-events"], b'{"hello": "runner"}', **{"ce-type": "test.v1"}).result(30)

    record = _wait_for_delivery(
        project_dir, lambda body: body.get("subscription") == info.subscriptions["recorder-runner-events"]
    )
    assert base64.b64decode(record["body"]["message"]["data"]) == b'{"hello": "runner"}'
    assert record["body"]["message"]["attributes"] == {"ce-type": "test.v1"}
    assert record["env"] == {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "PUBSUB_EMULATOR_HOST": info.emulators["pubsub"],
        "FIRESTORE_EMULATOR_HOST": info.emulators["firestore"],
        "STORAGE_EMULATOR_HOST": info.emulators["storage"],
        "K_SERVICE": "recorder",
        "TOPIC_RUNNER_EVENTS": "runner-events",
        "BUCKET_UPLOADS": "runner-uploads",
        "BUCKET_RENDITIONS": "runner-renditions",
        "PYTHONUNBUFFERED": "1",
    }


def test_upload_to_the_uploads_bucket_is_notified_on_its_topic(info: StackInfo, project_dir: Path) -> None:
    client = storage_client(info.emulators["storage"], PROJECT)
    client.bucket(info.buckets["uploads"]).blob("photos/cat.jpg").upload_from_string(b"meow", content_type="image/jpeg")

    record = _wait_for_delivery(
        project_dir, lambda body: body.get("subscription") == info.subscriptions["recorder-runner-uploads"]
    )
    attributes = record["body"]["message"]["attributes"]
    assert (attributes["eventType"], attributes["bucketId"], attributes["objectId"]) == (
        "OBJECT_FINALIZE",
        "runner-uploads",
        "photos/cat.jpg",
    )


def test_second_up_on_a_live_state_dir_is_refused(runner: Stack, project_dir: Path) -> None:
    other_ports = find_free_port_base(1)
    second = Stack(runner.state_dir, other_ports, PROJECT, topology_path=project_dir / "topology.yaml")
    with pytest.raises(StackError, match=r"already running .*python -m stack down"):
        second.up()
    assert port_is_free(other_ports)  # refused before starting anything
    assert all(s.alive for s in runner.status())  # and the running stack is untouched


def test_taken_port_fails_fast_naming_port_and_flag(project_dir: Path, tmp_path: Path) -> None:
    base = find_free_port_base(1)
    with _listening_on(base + 2):
        stack = Stack(tmp_path / "state", base, PROJECT, topology_path=project_dir / "topology.yaml")
        began = time.monotonic()
        with pytest.raises(StackError, match=rf"port {base + 2} \(for storage\) is already in use.*--port-base"):
            stack.up()
    assert time.monotonic() - began < 5
    assert port_is_free(base)
    assert not (tmp_path / "state" / "stack.json").exists()


def test_pubsub_port_taken_after_the_check_fails_fast(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Pub/Sub emulator idles instead of exiting when it can't bind; the runner must notice from its log.
    monkeypatch.setattr("stack.runner.ensure_free", lambda layout: None)  # as if the port went after the check
    base = find_free_port_base(1)
    with _listening_on(base):
        stack = Stack(tmp_path / "state", base, PROJECT, topology_path=project_dir / "topology.yaml")
        began = time.monotonic()
        with pytest.raises(StackError, match=r"pubsub failed to start(.|\n)*Address already in use"):
            stack.up()
    assert time.monotonic() - began < 30
    _assert_ports_free(PortLayout(base, ("recorder",)))
    assert not list((tmp_path / "state" / "processes").glob("*.json"))  # every record removed with its process


def test_failing_service_stops_what_was_started(project_dir: Path, tmp_path: Path) -> None:
    broken = project_dir / "broken.yaml"
    broken.write_text(TOPOLOGY.replace("target: handle", "target: no_such_function"))
    base = find_free_port_base(1)
    stack = Stack(tmp_path / "state", base, PROJECT, topology_path=broken)
    with pytest.raises(
        StackError, match=r"recorder exited before it was ready \(exit code \d+\)(.|\n)*no_such_function"
    ):
        stack.up()
    _assert_ports_free(PortLayout(base, ("recorder",)))
    assert not (tmp_path / "state" / "stack.json").exists()
    assert not list((tmp_path / "state" / "processes").glob("*.json"))  # every record removed with its process


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")
def test_down_leaves_alone_a_process_that_reused_a_recorded_pid(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)  # a group leader, like ours
    try:
        record = tmp_path / "state" / "stack.json"
        record.parent.mkdir()
        record.write_text(
            json.dumps(
                {
                    "project": PROJECT,
                    "emulators": {"pubsub": "127.0.0.1:1", "firestore": "127.0.0.1:2", "storage": "http://127.0.0.1:3"},
                    "services": {},
                    "topics": {},
                    "subscriptions": {},
                    "buckets": {},
                    "pids": {"pubsub": stranger.pid},
                    "logs": str(tmp_path / "logs"),
                }
            )
        )
        an_hour_ago = time.time() - 3600  # the record predates the process holding its pid (think: reboot)
        os.utime(record, (an_hour_ago, an_hour_ago))
        stack = Stack(tmp_path / "state")
        assert [s.alive for s in stack.status()] == [False]
        assert stack.down() == {}
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")
def test_down_finds_processes_by_their_records_alone_but_never_a_pid_reused_since(tmp_path: Path) -> None:
    ours = subprocess.Popen(["sleep", "60"], start_new_session=True)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        state_dir = tmp_path / "state"
        write_record(state_dir, new_record("inventory", ours.pid))  # no stack.json at all
        an_hour_ago = new_record("pubsub", stranger.pid).started - 3600  # the recorded process ended; pid reused
        write_record(state_dir, ProcessRecord("pubsub", stranger.pid, started=an_hour_ago))

        assert Stack(state_dir).down() == {"inventory": ours.pid}

        assert not group_is_alive(ours.pid)  # (down reaped it: its exit status is not ours to read)
        assert stranger.poll() is None
        assert not list((state_dir / "processes").glob("*.json"))
    finally:
        for process in (ours, stranger):
            process.kill()
            process.wait()


def _process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]  # R, S, T (stopped), ...


def _members(pgid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                found.append(int(proc.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process states come from /proc")
def test_paused_groups_stops_every_member_and_resumes_them_even_after_an_error() -> None:
    group = subprocess.Popen(["sh", "-c", "sleep 60 & exec sleep 60"], start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while len(_members(group.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_members(group.pid)) == 2
        with pytest.raises(RuntimeError, match="the block failed"), paused_groups([group.pid]):
            time.sleep(0.2)  # a signal is delivered asynchronously
            assert {_process_state(pid) for pid in _members(group.pid)} == {"T"}
            raise RuntimeError("the block failed")
        time.sleep(0.2)
        assert "T" not in {_process_state(pid) for pid in _members(group.pid)}
    finally:
        os.killpg(group.pid, signal.SIGKILL)
        group.wait()


HANDLES_SIGTERM = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(print("handled SIGTERM", flush=True)))
print("ready", flush=True)
time.sleep(60)
"""


def test_a_group_left_paused_still_stops_at_sigterm_without_waiting_for_sigkill() -> None:
    # A process that handles SIGTERM, as the services and emulators do: the kernel ends a stopped process at once
    # only for a signal left at its default action.
    group = subprocess.Popen([sys.executable, "-c", HANDLES_SIGTERM], start_new_session=True, stdout=subprocess.PIPE)
    try:
        assert group.stdout is not None and group.stdout.readline() == b"ready\n"
        os.killpg(group.pid, signal.SIGSTOP)  # as an interrupted paused_groups would leave it
        started = time.monotonic()
        stop_groups([group.pid], grace=30)
        assert time.monotonic() - started < 10
        assert group.stdout.read() == b"handled SIGTERM\n"  # its handler ran: stopped by SIGTERM, not SIGKILL
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group.pid, signal.SIGKILL)
        group.wait()


def test_down_stops_every_process_and_frees_the_ports(runner: Stack, info: StackInfo, topology: Topology) -> None:
    # Last in the module: it stops the shared stack.
    assert list(runner.down()) == ["pubsub", "firestore", "storage", "smtp", "supervisor", "recorder"]
    assert not any(group_is_alive(pid) for pid in info.pids.values())
    _assert_ports_free(PortLayout(runner.port_base, tuple(topology.services)))
    assert runner.info() is None
    with pytest.raises(StackError, match="no stack recorded"):
        runner.status()
