"""A stack of its own for the tests that kill things, run through the CLI as an operator runs it.

Two throwaway services: ``recorder`` saves every request it gets, with the port of the instance that got it (so a
test sees how pushes spread over instances), and ``crasher`` exits at start while a marker file exists. Each
stack has its own port block and state directory, so killing its processes disturbs no other test.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from google.api_core import exceptions as google_exceptions
from google.cloud import pubsub_v1
from reliability_support import REPO, wait_for

from stack.ports import PortLayout, find_free_port_base
from stack.process_records import ProcessRecord, read_record
from stack.processes import http_answers

PROJECT = "supervision-test"
FIRST_DELAY, MAX_DELAY = 0.25, 2.0  # --restart-backoff, so a crash loop shows its doubling within seconds
SERVICES = ("recorder", "crasher")

RECORDER = textwrap.dedent(
    """
    import json, os, pathlib, uuid

    INBOX = pathlib.Path(__file__).parent / "inbox"

    def handle(request):
        INBOX.mkdir(exist_ok=True)
        tmp = INBOX / f".{uuid.uuid4().hex}"
        tmp.write_text(json.dumps({"body": request.get_json(silent=True), "port": os.environ["PORT"]}))
        tmp.rename(INBOX / f"{uuid.uuid4().hex}.json")  # whole files only
        return "", 204
    """
)

CRASHER = textwrap.dedent(
    """
    import os, pathlib

    if (pathlib.Path(__file__).parent / "crash-on-start").exists():
        print("crasher: crash-on-start is there; exiting with 3", flush=True)
        os._exit(3)

    def handle(request):
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
      recorder: {source: recorder, target: handle, signature_type: http, request_timeout_seconds: 10}
      crasher: {source: crasher, target: handle, signature_type: http, request_timeout_seconds: 10}
    topics:
      sup-events: {description: the bus}
      sup-uploads: {description: upload notifications}
      sup-dead-letter: {dead_letter: true}
    subscriptions:
      recorder-sup-events: {topic: sup-events, push_to: recorder, dead_letter_topic: sup-dead-letter}
      crasher-sup-uploads: {topic: sup-uploads, push_to: crasher, dead_letter_topic: sup-dead-letter}
    buckets:
      uploads: {name: sup-uploads, notify_topic: sup-uploads}
      renditions: {name: sup-renditions}
    """
)

ENDED = re.compile(
    r"^(?P<at>\S+) (?P<name>[\w-]+) \(pid (?P<pid>\d+)\) ended: (?P<exit>.+) after [\d.]+ s; "
    r"restart (?P<restart>\d+) in (?P<delay>[\d.]+) s"
)
RESTARTED = re.compile(r"^(?P<at>\S+) (?P<name>[\w-]+) restarted: pid (?P<pid>\d+) \(restart (?P<restart>\d+)\)")


@dataclass(frozen=True)
class StackUnderTest:
    root: Path
    state_dir: Path
    port_base: int
    instances: Mapping[str, int] = field(default_factory=dict)
    instances_in_topology: bool = False  # the counts are the topology's `instances`, not `--instances`

    def record(self, name: str) -> ProcessRecord:
        record = read_record(self.state_dir, name)
        assert record is not None, f"no record of {name} in {self.state_dir}"
        return record

    def stack_json(self) -> dict:
        return json.loads((self.state_dir / "stack.json").read_text())

    def supervisor_log(self) -> str:
        return (self.state_dir / "logs" / "supervisor.log").read_text()

    @property
    def layout(self) -> PortLayout:
        return PortLayout(self.port_base, SERVICES, self.instances)

    def port(self, name: str) -> int:
        """A service's port (its front's, if it runs several instances), or ``SERVICE.N``'s."""
        if "." in name:
            service, number = name.rsplit(".", 1)
            return self.layout.instance(service, int(number))
        return self.layout.service(name)


def run_stack(state_dir: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``python -m stack ...`` as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "stack", *args, "--state-dir", str(state_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def make_project(
    root: Path, instances: Mapping[str, int] | None = None, *, in_topology: bool = False
) -> StackUnderTest:
    """The two services and their topology under ``root``; a stack of them on a free port block. ``instances``
    are given to ``up`` as ``--instances``, or, ``in_topology``, written into the topology as each service's
    ``instances``."""
    for name, source in (("recorder", RECORDER), ("crasher", CRASHER)):
        (root / name).mkdir()
        (root / name / "main.py").write_text(source)
    instances = dict(instances or {})
    topology = yaml.safe_load(TOPOLOGY)
    if in_topology:
        for name, count in instances.items():
            topology["services"][name]["instances"] = count
    (root / "topology.yaml").write_text(yaml.safe_dump(topology, sort_keys=False))
    ports = len(SERVICES) + sum(instances.values())
    return StackUnderTest(root, root / "state", find_free_port_base(ports), instances, in_topology)


def up_args(stack: StackUnderTest) -> list[str]:
    args = [
        "up",
        "--port-base", str(stack.port_base),
        "--project", PROJECT,
        "--topology", str(stack.root / "topology.yaml"),
        "--restart-backoff", f"{FIRST_DELAY},{MAX_DELAY}",
    ]  # fmt: skip
    if stack.instances and not stack.instances_in_topology:
        args += ["--instances", ",".join(f"{name}={count}" for name, count in stack.instances.items())]
    return args


def wait_for_restart(stack: StackUnderTest, name: str, old: int) -> int:
    """The pid of the process that replaced ``old``, once it answers."""
    wait_for(
        lambda: stack.record(name).pid != old and http_answers(stack.port(name), "/robots.txt"),
        60,
        f"{name} restarted and answering",
    )
    return stack.record(name).pid


def pushed(stack: StackUnderTest) -> list[tuple[bytes, int]]:
    """(data, instance port) of every message the recorder was pushed (and answered 204 to: it saves first)."""
    saved = [json.loads(path.read_text()) for path in (stack.root / "recorder" / "inbox").glob("*.json")]
    return [(base64.b64decode(entry["body"]["message"]["data"]), int(entry["port"])) for entry in saved]


def nothing_dead_lettered(stack: StackUnderTest) -> bool:
    subscriber = pubsub_v1.SubscriberClient()
    path = stack.stack_json()["subscriptions"]["sup-dead-letter-pull"]
    try:
        response = subscriber.pull(request={"subscription": path, "max_messages": 10}, timeout=5)
    except google_exceptions.DeadlineExceeded:
        return True
    return not response.received_messages


def status_rows(stdout: str) -> dict[str, dict[str, str]]:
    """`python -m stack status`'s table, by process name."""
    header, *lines = stdout.splitlines()
    columns = re.split(r"\s{2,}", header)
    rows = (dict(zip(columns, re.split(r"\s{2,}", line), strict=True)) for line in lines)
    return {row["NAME"]: row for row in rows}
