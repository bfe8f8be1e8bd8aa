"""The supervisor's pure parts: how long a crashed service waits, and how an exit is described."""

from __future__ import annotations

import argparse
import signal

import pytest

from stack.cli import _backoff
from stack.errors import StackError
from stack.supervisor import RestartPolicy, describe_exit


def test_backoff_doubles_with_every_crash_in_a_row_up_to_the_cap() -> None:
    policy = RestartPolicy(initial_seconds=1.0, max_seconds=30.0)
    assert [policy.delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_backoff_defaults_restart_a_first_crash_within_a_second() -> None:
    policy = RestartPolicy()
    assert policy.delay(1) == 1.0
    assert policy.delay(100) == policy.max_seconds == 30.0


@pytest.mark.parametrize(("initial", "most"), [(0.0, 1.0), (-1.0, 1.0), (5.0, 2.0)])
def test_a_backoff_that_cannot_work_is_refused_naming_both_values(initial: float, most: float) -> None:
    with pytest.raises(StackError, match=rf"0 < initial ≤ max, got initial {initial:g} s, max {most:g} s"):
        RestartPolicy(initial, most)


def test_an_exit_is_described_by_its_code_or_its_signal() -> None:
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(0) == "exit code 0"
    assert describe_exit(-signal.SIGKILL) == "signal 9 (SIGKILL)"
    assert describe_exit(-signal.SIGTERM) == "signal 15 (SIGTERM)"
    assert describe_exit(-200) == "signal 200"


def test_up_takes_the_backoff_as_first_comma_max() -> None:
    assert _backoff("0.25,2") == RestartPolicy(0.25, 2.0)
    assert str(RestartPolicy()) == "1,30"  # what `up --help` shows as the default
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected FIRST,MAX in seconds \(e.g. 1,30\), got '3'"):
        _backoff("3")
    with pytest.raises(argparse.ArgumentTypeError, match="0 < initial ≤ max"):
        _backoff("4,1")
