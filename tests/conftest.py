"""Test harness: one stack per session, Firestore wiped per test.

Layers, by folder (the marker is applied from the folder, so `make test-unit` etc. select them):
- tests/unit — pure logic, no I/O;
- tests/integration — real Google client libraries against the official emulators;
- tests/e2e — whole flows: publish → Pub/Sub emulator push → service → Firestore;
- tests/infra — Terraform, compose, Cloud Build and Dockerfiles checked offline, and what a package install ships;
- tests/reliability — faults under load: poison messages, killed consumers, emulator restarts;
- tests/containers — the images as shipped: built, started and run under docker compose.

Which stack (``--stack``, or TEST_STACK):
- ``local`` (default): emulators and services as processes (stack.runner), on its own port block
  (TEST_PORT_BASE, else a free random block) and state dir (.local/test-stacks/run-<pid>), so the suite runs
  beside a `make up` stack. tests/containers is deselected.
- ``compose``: the images, built and started by docker compose (stack.compose) under a project of its own
  (shop-test-<pid>) on free host ports. Only tests/containers and the tests marked ``compose`` run: flows of
  the other layers that also run, unchanged, against the containers (`make test-containers`).

Either stack starts only if a selected test needs it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from sent_mail import Mailbox, mailbox_of
from service_main import load_main

# The repository root (stack, dlq) and every service folder are on sys.path: pyproject.toml's pytest `pythonpath`.
REPO = Path(__file__).resolve().parent.parent

LAYERS = ("unit", "integration", "e2e", "browser", "infra", "reliability", "containers")
# What CI insists on (REQUIRE_ALL_SUITES=1), per stack: each must have passing tests.
REQUIRED = {"local": ("unit", "integration", "e2e", "browser"), "compose": ("containers", "compose")}
PROJECT = "shop-test"
STACKS = ("local", "compose")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--stack",
        choices=STACKS,
        default=os.environ.get("TEST_STACK", "local"),
        help="local: emulators and services as processes; compose: the images under docker compose (default: local)",
    )


def stack_kind(config: pytest.Config) -> str:
    return str(config.getoption("--stack"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if parts and parts[0] in LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
    if stack_kind(config) == "compose":
        runs = [item for item in items if "containers" in item.keywords or "compose" in item.keywords]
    else:  # everything but tests/containers: the tests marked `compose` run against the local stack too
        runs = [item for item in items if "containers" not in item.keywords]
    deselected = [item for item in items if item not in runs]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = runs


# --- "no tests ran" must never pass silently -------------------------------------------------------------

_passed: Counter[str] = Counter()
_failed: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    layer = next((name for name in LAYERS if name in report.keywords), "other")
    kinds = [layer, "compose"] if "compose" in report.keywords else [layer]
    for kind in kinds:
        if report.when == "call" and report.passed:
            _passed[kind] += 1
        elif report.failed:
            _failed[kind] += 1


def _missing(config: pytest.Config) -> list[str]:
    return [kind for kind in REQUIRED[stack_kind(config)] if _passed[kind] == 0]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("REQUIRE_ALL_SUITES") != "1":
        return
    if _missing(session.config) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    counts = ", ".join(f"{kind}: {_passed[kind]} passed/{_failed[kind]} failed" for kind in [*LAYERS, "compose"])
    terminalreporter.write_line(f"{stack_kind(config)} stack — {counts}")
    for line in _stack_report:
        terminalreporter.write_line(line)
    if os.environ.get("REQUIRE_ALL_SUITES") == "1" and (missing := _missing(config)):
        terminalreporter.write_line(
            f"REQUIRE_ALL_SUITES: no passing test in {', '.join(missing)} — failing the run", red=True
        )


_stack_report: list[str] = []  # what the session's stack took to build and start, for the summary


# --- the stack ---------------------------------------------------------------------------------------------


def _pick_port_base() -> int:
    """TEST_PORT_BASE if set, else a random free block (so two runs, or a `make up`, never collide)."""
    from stack.ports import find_free_port_base
    from stack.topology import load_topology

    if os.environ.get("TEST_PORT_BASE"):
        return int(os.environ["TEST_PORT_BASE"])
    return find_free_port_base(len(load_topology().services))


@pytest.fixture(scope="session")
def stack_runner(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's stack, started: a stack.runner.Stack (local) or a stack.compose.ComposeStack (compose).

    Either writes <state_dir>/stack.json. Stopped at the end of the session.
    """
    if stack_kind(request.config) == "compose":
        yield from _compose_stack()
        return
    from stack.runner import Stack

    # One state dir per run, so concurrent runs (two terminals, parallel agents) never stop each other's stack.
    state_dir = REPO / ".local" / "test-stacks" / f"run-{os.getpid()}"
    runner = Stack(state_dir=state_dir, port_base=_pick_port_base(), project=PROJECT)
    runner.up()
    try:
        yield runner
    finally:
        runner.down()
        shutil.rmtree(state_dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _compose_stack() -> Iterator[Any]:
    """The images, built as Cloud Build builds them and started by docker compose; its logs are kept."""
    from stack.compose import ComposeStack, require_engine

    engine = require_engine()  # no engine: an error that says so (the layer is never skipped)
    runs = REPO / ".local" / "test-stacks"
    for earlier in runs.glob("compose-*"):  # the logs earlier runs kept: the last run's are enough
        pid = earlier.name.removeprefix("compose-")
        if not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(earlier, ignore_errors=True)
    state_dir = runs / f"compose-{os.getpid()}"
    stack = ComposeStack(state_dir, project=f"shop-test-{os.getpid()}")
    _stack_report.append(f"containers: {engine}; build {stack.build():.1f} s")
    try:
        stack.up()
        _stack_report.append(f"containers: every container healthy {stack.healthy_seconds:.1f} s after `up`")
        yield stack
    finally:
        stack.down()
        _stack_report.append(f"containers: logs of this run in {stack.logs_dir}")


@pytest.fixture(scope="session")
def stack(stack_runner: Any) -> Iterator[dict[str, Any]]:
    """The running stack's stack.json, with this process's client environment pointed at it."""
    info = json.loads((stack_runner.state_dir / "stack.json").read_text())
    previous = {name: os.environ.get(name) for name in _EMULATOR_VARS}
    os.environ.update(
        PUBSUB_EMULATOR_HOST=info["emulators"]["pubsub"],
        FIRESTORE_EMULATOR_HOST=info["emulators"]["firestore"],
        STORAGE_EMULATOR_HOST=info["emulators"]["storage"],
        GOOGLE_CLOUD_PROJECT=info["project"],
    )
    try:
        yield info
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_EMULATOR_VARS = ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")


def wipe_firestore(info: dict[str, Any]) -> None:
    url = (
        f"http://{info['emulators']['firestore']}/emulator/v1/projects/{info['project']}/databases/(default)/documents"
    )
    requests.delete(url, timeout=10).raise_for_status()


def wait_until_quiet(info: dict[str, Any], quiet_for: float = 0.6, at_most: float = 15.0) -> None:
    """Wait (bounded) until no process of the stack has logged anything for ``quiet_for`` seconds.

    Deliveries still in flight from the previous test (redeliveries, duplicates it published) would otherwise
    land after the wipe, find an empty ledger, and change the next test's data.
    """
    logs = Path(info["logs"])
    deadline = time.monotonic() + at_most
    last = None
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        sizes = sorted((p.name, p.stat().st_size) for p in logs.glob("*.log") if p.name != "scheduler.log")
        if sizes != last:
            last, quiet_since = sizes, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_for:
            return
        time.sleep(0.1)


@pytest.fixture
def clean_stack(stack: dict[str, Any], stack_runner: Any) -> dict[str, Any]:
    """The session's stack, quiet, with Firestore emptied before the test."""
    if hasattr(stack_runner, "wait_until_quiet"):
        stack_runner.wait_until_quiet()
    else:
        wait_until_quiet(stack)
    wipe_firestore(stack)
    return stack


# --- what differs between the two stacks, for the tests that run on both ------------------------------------------


@pytest.fixture
def mailbox(stack: dict[str, Any]) -> Mailbox:
    """The mail the notifications service sent: the local SMTP sink's folder, or the Mailpit container."""
    return mailbox_of(stack)


@pytest.fixture
def service_log(stack: dict[str, Any], stack_runner: Any) -> Callable[[str], str]:
    """``service_log(name)``: what the service has logged so far (one JSON object per line)."""
    if hasattr(stack_runner, "logs"):
        return stack_runner.logs
    return lambda name: (Path(stack["logs"]) / f"{name}.log").read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def push_endpoint(stack: dict[str, Any], stack_runner: Any) -> Callable[[str], str]:
    """``push_endpoint(service)``: the URL the Pub/Sub emulator pushes to, to reach that service."""
    if hasattr(stack_runner, "push_endpoint"):
        return stack_runner.push_endpoint
    return lambda name: stack["services"][name] + "/"


@pytest.fixture(scope="session")
def callback_host(stack_runner: Any) -> str:
    """Where a server the test runs must listen for the stack's Pub/Sub emulator to reach it."""
    if hasattr(stack_runner, "host_address"):
        return str(stack_runner.host_address())
    return "127.0.0.1"


@pytest.fixture
def service_main(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """``service_main(service, **env)``: services/<service>/main.py loaded afresh with ``env`` set for this test
    (tests/service_main.py)."""

    def load(service: str, **env: str) -> ModuleType:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return load_main(service)

    return load


@pytest.fixture
def db(clean_stack: dict[str, Any]) -> Any:
    from google.cloud import firestore

    return firestore.Client(project=clean_stack["project"])


@pytest.fixture(scope="session")
def publisher(stack: dict[str, Any]) -> Any:
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient()
