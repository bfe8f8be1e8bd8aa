"""Test harness: one local stack (emulators + services as processes) per session, Firestore wiped per test.

Layers, by folder (the marker is applied from the folder, so `make test-unit` etc. select them):
- tests/unit — pure logic, no I/O;
- tests/integration — real Google client libraries against the official emulators;
- tests/e2e — whole flows: publish → Pub/Sub emulator push → service → Firestore;
- tests/infra — Terraform, compose, Cloud Build and Dockerfiles checked offline;
- tests/reliability — faults under load: poison messages, killed consumers, emulator restarts.

The stack starts on its own port block (TEST_PORT_BASE, else a free random block) and state dir
(.local/test-stacks/run-<pid>), so the suite runs beside a `make up` stack. It starts only if a selected test needs it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LAYERS = ("unit", "integration", "e2e", "infra", "reliability")
# The layers CI insists on (REQUIRE_ALL_SUITES=1): each must have passing tests.
REQUIRED_LAYERS = ("unit", "integration", "e2e")
PROJECT = "shop-test"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if parts and parts[0] in LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


# --- "no tests ran" must never pass silently -------------------------------------------------------------

_passed: Counter[str] = Counter()
_failed: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    layer = next((name for name in LAYERS if name in report.keywords), "other")
    if report.when == "call" and report.passed:
        _passed[layer] += 1
    elif report.failed:
        _failed[layer] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("REQUIRE_ALL_SUITES") != "1":
        return
    missing = [layer for layer in REQUIRED_LAYERS if _passed[layer] == 0]
    if missing and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    counts = ", ".join(f"{layer}: {_passed[layer]} passed/{_failed[layer]} failed" for layer in LAYERS)
    terminalreporter.write_line(f"layers — {counts}")
    if os.environ.get("REQUIRE_ALL_SUITES") == "1":
        missing = [layer for layer in REQUIRED_LAYERS if _passed[layer] == 0]
        if missing:
            terminalreporter.write_line(
                f"REQUIRE_ALL_SUITES: no passing test in {', '.join(missing)} — failing the run", red=True
            )


# --- the stack ---------------------------------------------------------------------------------------------


def _pick_port_base() -> int:
    """TEST_PORT_BASE if set, else a random free block (so two runs, or a `make up`, never collide)."""
    from stack.ports import find_free_port_base
    from stack.topology import load_topology

    if os.environ.get("TEST_PORT_BASE"):
        return int(os.environ["TEST_PORT_BASE"])
    return find_free_port_base(len(load_topology().services))


@pytest.fixture(scope="session")
def stack_runner() -> Iterator[Any]:
    """The session's local stack (a stack.runner.Stack, started); stopped at the end of the session."""
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
def clean_stack(stack: dict[str, Any]) -> dict[str, Any]:
    """The session's stack, quiet, with Firestore emptied before the test."""
    wait_until_quiet(stack)
    wipe_firestore(stack)
    return stack


@pytest.fixture
def db(clean_stack: dict[str, Any]) -> Any:
    from google.cloud import firestore

    return firestore.Client(project=clean_stack["project"])


@pytest.fixture(scope="session")
def publisher(stack: dict[str, Any]) -> Any:
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient()
