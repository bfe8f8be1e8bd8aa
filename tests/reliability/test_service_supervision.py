"""A crashed service comes back, as Cloud Run replaces a crashed instance: the stack's supervisor.

One stack of its own for the module (its own port block and state dir, so killing its services disturbs no other
test), started the way an operator starts it, ``python -m stack up --detach``, with two throwaway services: a
``recorder`` that saves every push it gets, and a ``crasher`` that exits at start while a marker file exists.
The tests run in file order; the last one removes stack.json and still stops everything.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from cli_stack import (
    ENDED,
    FIRST_DELAY,
    RESTARTED,
    SERVICES,
    StackUnderTest,
    make_project,
    nothing_dead_lettered,
    pushed,
    run_stack,
    status_rows,
    up_args,
    wait_for_restart,
)
from google.cloud import pubsub_v1
from reliability_support import REPO, wait_for

from stack.ports import PortLayout
from stack.processes import group_is_alive, http_answers, port_is_free


def test_in_the_foreground_a_killed_service_is_restarted_and_the_terminal_says_so(tmp_path: Path) -> None:
    # First in the module, so its stack is gone before the detached one starts.
    stack = make_project(tmp_path)
    out, err = tmp_path / "up.out", tmp_path / "up.err"
    argv = [sys.executable, "-m", "stack", *up_args(stack), "--state-dir", str(stack.state_dir)]
    with out.open("w") as stdout, err.open("w") as stderr:
        up = subprocess.Popen(argv, cwd=REPO, stdout=stdout, stderr=stderr, start_new_session=True)
    try:
        wait_for(lambda: "running in the foreground" in out.read_text() or up.poll() is not None, 240, "`up` ready")
        assert up.poll() is None, err.read_text()
        old = stack.record("recorder").pid

        os.kill(old, signal.SIGKILL)

        new = wait_for_restart(stack, "recorder", old)
        wait_for(lambda: f"recorder restarted: pid {new} (restart 1)" in err.read_text(), 30, "the terminal told")
        assert f"recorder (pid {old}) ended: signal 9 (SIGKILL)" in err.read_text()
        pids = stack.stack_json()["pids"]
        up.send_signal(signal.SIGINT)  # Ctrl-C
        assert up.wait(timeout=60) == 0, err.read_text()
        assert out.read_text().rstrip().endswith("stopped")
        assert not [name for name, pid in pids.items() if group_is_alive(pid)]
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            up.wait(timeout=60)
        run_stack(stack.state_dir, "down")


@pytest.fixture(scope="module")
def detached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackUnderTest]:
    stack = make_project(tmp_path_factory.mktemp("supervision"))
    up = run_stack(stack.state_dir, *up_args(stack), "--detach")
    assert up.returncode == 0, up.stderr
    try:
        yield stack
    finally:
        run_stack(stack.state_dir, "down")  # nothing left to stop when the last test ran


def test_a_killed_service_is_restarted_and_then_gets_the_push_sent_while_it_was_down(
    detached: StackUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", detached.stack_json()["emulators"]["pubsub"])
    old = detached.record("recorder").pid

    os.kill(old, signal.SIGKILL)  # as an OOM kill would end it
    wait_for(lambda: detached.record("recorder").last_exit is not None, 30, "the supervisor noticing the kill")
    marker = uuid.uuid4().hex
    pubsub_v1.PublisherClient().publish(detached.stack_json()["topics"]["sup-events"], marker.encode()).result(30)

    wait_for(
        lambda: marker.encode() in [data for data, _ in pushed(detached)],
        60,
        "the restarted recorder processing the push published while it was down",
    )
    record = detached.record("recorder")
    assert (record.restarts, record.last_exit) == (1, "signal 9 (SIGKILL)")
    assert record.pid != old and group_is_alive(record.pid) and not group_is_alive(old)
    assert detached.stack_json()["pids"]["recorder"] == record.pid  # stack.json follows the restart
    ended = [m for m in map(ENDED.match, detached.supervisor_log().splitlines()) if m and m["name"] == "recorder"]
    assert [(int(m["pid"]), m["exit"], float(m["delay"])) for m in ended] == [(old, "signal 9 (SIGKILL)", FIRST_DELAY)]
    assert f"recorder restarted: pid {record.pid} (restart 1)" in detached.supervisor_log()
    assert nothing_dead_lettered(detached)


def test_status_shows_each_services_restarts_and_last_exit(detached: StackUnderTest) -> None:
    result = run_stack(detached.state_dir, "status")
    assert result.returncode == 0, result.stdout + result.stderr  # everything alive and answering again
    rows = status_rows(result.stdout)
    assert (rows["recorder"]["RESTARTS"], rows["recorder"]["LAST EXIT"]) == ("1", "signal 9 (SIGKILL)")
    assert (rows["crasher"]["RESTARTS"], rows["crasher"]["LAST EXIT"]) == ("0", "-")
    assert rows["pubsub"]["RESTARTS"] == "-"  # emulators are not supervised
    assert rows["supervisor"]["PROCESS"] == "alive"


def _crasher_lines(stack: StackUnderTest, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    return [m for m in map(pattern.match, stack.supervisor_log().splitlines()) if m and m["name"] == "crasher"]


def test_a_service_that_keeps_crashing_waits_longer_before_each_restart(detached: StackUnderTest) -> None:
    marker = detached.root / "crasher" / "crash-on-start"
    marker.touch()
    try:
        os.kill(detached.record("crasher").pid, signal.SIGKILL)
        # The log, not the record: the record counts a restart a moment before its line is written.
        wait_for(lambda: len(_crasher_lines(detached, RESTARTED)) >= 5, 90, "five restarts of the crashing service")
    finally:
        marker.unlink()

    ended = _crasher_lines(detached, ENDED)[:5]
    restarted = _crasher_lines(detached, RESTARTED)[:5]
    assert [m["exit"] for m in ended] == ["signal 9 (SIGKILL)"] + ["exit code 3"] * 4
    assert [float(m["delay"]) for m in ended] == [0.25, 0.5, 1.0, 2.0, 2.0]  # doubling, capped at MAX_DELAY
    for end, start in zip(ended, restarted, strict=True):  # and each restart really waited that long
        waited = (datetime.fromisoformat(start["at"]) - datetime.fromisoformat(end["at"])).total_seconds()
        assert waited >= float(end["delay"]) - 0.01, (end.group(0), start.group(0))

    # Once the fault is gone, the next restart brings it back.
    wait_for(lambda: http_answers(detached.port("crasher"), "/robots.txt"), 60, "the crasher answering again")
    assert detached.record("crasher").last_exit == "exit code 3"


def test_restart_of_an_unknown_name_says_which_services_there_are(detached: StackUnderTest) -> None:
    unknown = run_stack(detached.state_dir, "restart", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("stack: error: no service named 'nope' in the stack recorded in")
    assert unknown.stderr.rstrip().endswith("services: recorder, crasher")
    emulator = run_stack(detached.state_dir, "restart", "pubsub")
    assert emulator.returncode == 1
    assert "pubsub is an emulator or helper, not a service; services: recorder, crasher" in emulator.stderr


def test_restart_replaces_a_service_now(detached: StackUnderTest) -> None:
    before = detached.record("recorder")

    result = run_stack(detached.state_dir, "restart", "recorder")

    assert result.returncode == 0, result.stderr
    after = detached.record("recorder")
    assert result.stdout.strip() == f"restarted recorder: pid {before.pid} → {after.pid}, answering"
    assert (after.restarts, after.last_exit) == (before.restarts + 1, "stopped on request (restart)")
    assert not group_is_alive(before.pid) and http_answers(detached.port("recorder"), "/robots.txt")
    assert "recorder: restart requested" in detached.supervisor_log()


def test_down_stops_everything_even_without_stack_json(detached: StackUnderTest) -> None:
    pids = detached.stack_json()["pids"]
    (detached.state_dir / "stack.json").unlink()

    result = run_stack(detached.state_dir, "down")

    assert result.returncode == 0, result.stderr
    assert "stack.json is missing or unreadable; found the processes by their records" in result.stdout
    assert set(re.findall(r"(\S+) \(pid (\d+)\)", result.stdout)) == {(n, str(p)) for n, p in pids.items()}
    assert not [name for name, pid in pids.items() if group_is_alive(pid)]
    layout = PortLayout(detached.port_base, SERVICES)
    assert not {user: port for user, port in layout.all().items() if not port_is_free(port)}
    assert run_stack(detached.state_dir, "down").stdout.startswith("no stack recorded")
