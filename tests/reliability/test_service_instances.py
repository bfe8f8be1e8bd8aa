"""Several instances of one service, as Cloud Run runs several: pushes spread across them, each one supervised.

A stack of its own (tests/reliability/cli_stack.py), whose topology says ``instances: 3`` for the recorder (the
chaos test gives ``--instances`` instead): three recorder processes behind a front on the recorder's own port,
which is where its push subscription points. The tests run in file order.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from cli_stack import (
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
from reliability_support import wait_for

from stack.processes import group_is_alive, http_answers, port_is_free

INSTANCES = 3
RECORDERS = [f"recorder.{n}" for n in range(1, INSTANCES + 1)]
MESSAGES = 30


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackUnderTest]:
    stack = make_project(tmp_path_factory.mktemp("instances"), {"recorder": INSTANCES}, in_topology=True)
    up = run_stack(stack.state_dir, *up_args(stack), "--detach")
    assert up.returncode == 0, up.stderr
    try:
        yield stack
    finally:
        run_stack(stack.state_dir, "down")


@pytest.fixture
def publish(three: StackUnderTest, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", three.stack_json()["emulators"]["pubsub"])
    publisher = pubsub_v1.PublisherClient()
    topic = three.stack_json()["topics"]["sup-events"]

    def send(count: int) -> set[bytes]:
        sent = {uuid.uuid4().hex.encode() for _ in range(count)}
        for future in [publisher.publish(topic, data) for data in sent]:
            future.result(30)
        return sent

    return send


def _received(stack: StackUnderTest, sent: set[bytes]) -> Counter[int]:
    """Per instance port, how many of ``sent`` it processed."""
    return Counter(port for data, port in pushed(stack) if data in sent)


def test_the_service_keeps_one_address_and_its_pushes_spread_over_every_instance(
    three: StackUnderTest, publish: Any
) -> None:
    record = three.stack_json()
    assert record["services"]["recorder"] == f"http://127.0.0.1:{three.port('recorder')}"  # the front
    assert record["instances"] == {"recorder": [f"http://127.0.0.1:{three.port(name)}" for name in RECORDERS]}
    assert [name for name in record["pids"] if name.startswith("recorder")] == [*RECORDERS, "recorder"]

    sent = publish(MESSAGES)

    wait_for(lambda: sum(_received(three, sent).values()) >= MESSAGES, 60, f"all {MESSAGES} pushes processed")
    per_instance = _received(three, sent)
    assert set(per_instance) == {three.port(name) for name in RECORDERS}
    # Round robin: 10 each, give or take a redelivery.
    assert min(per_instance.values()) >= MESSAGES // INSTANCES - 3, per_instance


def test_a_killed_instance_is_restarted_while_the_others_take_its_pushes(three: StackUnderTest, publish: Any) -> None:
    old = three.record("recorder.2").pid

    os.kill(old, signal.SIGKILL)
    sent = publish(MESSAGES)

    wait_for(lambda: sum(_received(three, sent).values()) >= MESSAGES, 60, f"all {MESSAGES} pushes processed")
    new = wait_for_restart(three, "recorder.2", old)
    record = three.record("recorder.2")
    assert (record.restarts, record.last_exit) == (1, "signal 9 (SIGKILL)")
    assert f"recorder.2 (pid {old}) ended: signal 9 (SIGKILL)" in three.supervisor_log()
    assert f"recorder.2 restarted: pid {new} (restart 1)" in three.supervisor_log()
    assert [three.record(name).restarts for name in ("recorder.1", "recorder.3", "recorder")] == [0, 0, 0]
    assert nothing_dead_lettered(three)


def test_status_shows_every_instance_and_the_front(three: StackUnderTest) -> None:
    result = run_stack(three.state_dir, "status")

    assert result.returncode == 0, result.stdout + result.stderr
    rows = status_rows(result.stdout)
    assert rows["recorder"]["KIND"] == "front"
    assert [rows[name]["KIND"] for name in RECORDERS] == ["instance"] * INSTANCES
    assert [rows[name]["ADDRESS"] for name in RECORDERS] == [f"http://127.0.0.1:{three.port(n)}" for n in RECORDERS]
    assert [rows[name]["RESTARTS"] for name in RECORDERS] == ["0", "1", "0"]
    assert {rows[name]["LOG"] for name in RECORDERS} == {str(three.state_dir / "logs" / "recorder.log")}
    assert rows["recorder"]["LOG"] == str(three.state_dir / "logs" / "recorder.front.log")


def test_restarting_the_service_replaces_its_instances_one_at_a_time_and_it_keeps_answering(
    three: StackUnderTest,
) -> None:
    before = {name: three.record(name).pid for name in RECORDERS}
    failures: list[int] = []
    probes = 0
    done = threading.Event()

    def probe() -> None:
        nonlocal probes
        while not done.is_set():
            probes += 1
            if not http_answers(three.port("recorder"), "/robots.txt"):
                failures.append(probes)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        result = run_stack(three.state_dir, "restart", "recorder")
    finally:
        done.set()
        prober.join(timeout=10)

    assert result.returncode == 0, result.stderr
    after = {name: three.record(name).pid for name in RECORDERS}
    assert result.stdout.splitlines() == [
        f"restarted {name}: pid {before[name]} → {after[name]}, answering" for name in RECORDERS
    ]
    assert not any(group_is_alive(pid) for pid in before.values())
    assert probes > 10 and not failures  # one instance down at a time: the front always had another


def test_down_stops_every_instance_and_the_front(three: StackUnderTest) -> None:
    pids = three.stack_json()["pids"]

    result = run_stack(three.state_dir, "down")

    assert result.returncode == 0, result.stderr
    assert not [name for name, pid in pids.items() if group_is_alive(pid)]
    assert not {user: port for user, port in three.layout.all().items() if not port_is_free(port)}
