"""PublishGroups: a lone message goes at once; messages arriving during a call go together in the next one.

A fake Publish call stands in for Pub/Sub (the pure coordination logic); tests/integration/test_publish.py runs
the same path against the emulator.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from eventkit.publish_groups import PublishGroups


class FakePubSub:
    """Records every call; ``hold`` keeps calls waiting until released; ``failures`` maps a call's number to what
    it raises."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], float]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Semaphore(0)
        self.failures: dict[int, Exception] = {}
        self.guard = threading.Lock()
        self.in_flight: dict[str, int] = {}
        self.most_in_flight: dict[str, int] = {}

    def __call__(self, topic: str, messages: list[Any], timeout: float) -> list[str]:
        key = messages[0].split("/")[0]  # the tests' messages are "<ordering key>/<n>"
        assert all(message.split("/")[0] == key for message in messages), "one ordering key per call"
        with self.guard:
            self.calls.append((topic, list(messages), timeout))
            number = len(self.calls)
            self.in_flight[key] = self.in_flight.get(key, 0) + 1
            self.most_in_flight[key] = max(self.most_in_flight.get(key, 0), self.in_flight[key])
        self.entered.release()
        try:
            assert self.hold.wait(10)
            if number in self.failures:
                raise self.failures[number]
            return [f"id-{message}" for message in messages]
        finally:
            with self.guard:
                self.in_flight[key] -= 1


def _publish(groups: PublishGroups, message: str, *, timeout: float = 5.0, size: int = 10) -> str:
    return groups.publish("projects/p/topics/t", message.split("/")[0], message, size, timeout)


def _start(pool: ThreadPoolExecutor, groups: PublishGroups, messages: list[str], **options: Any) -> list[Any]:
    futures = []
    for message in messages:
        futures.append(pool.submit(_publish, groups, message, **options))
        time.sleep(0.02)  # in this order
    return futures


@contextlib.contextmanager
def _during_first_call(pubsub: FakePubSub, groups: PublishGroups, pool: ThreadPoolExecutor) -> Iterator[Future[str]]:
    """Publish "/0" and keep its call under way for the body of the ``with``; release it on the way out."""
    pubsub.hold.clear()
    first = pool.submit(_publish, groups, "/0")
    assert pubsub.entered.acquire(timeout=5)
    try:
        yield first
    finally:
        pubsub.hold.set()


def test_a_lone_message_is_one_call_with_its_timeout() -> None:
    pubsub = FakePubSub()

    assert _publish(PublishGroups(pubsub), "/1", timeout=7.0) == "id-/1"

    [(topic, messages, timeout)] = pubsub.calls
    assert (topic, messages) == ("projects/p/topics/t", ["/1"])
    assert 6.9 < timeout <= 7.0


def test_messages_arriving_during_a_call_go_together_in_the_next_in_their_order() -> None:
    pubsub = FakePubSub()
    groups = PublishGroups(pubsub)
    with ThreadPoolExecutor(8) as pool:
        with _during_first_call(pubsub, groups, pool) as first:
            rest = _start(pool, groups, [f"/{n}" for n in range(1, 6)])
        ids = [first.result(5)] + [future.result(5) for future in rest]

    assert ids == [f"id-/{n}" for n in range(6)]  # every caller gets its own message's id
    assert [messages for _, messages, _ in pubsub.calls] == [["/0"], ["/1", "/2", "/3", "/4", "/5"]]


def test_ordering_keys_never_share_a_call_and_each_key_has_one_call_at_a_time() -> None:
    pubsub = FakePubSub()
    groups = PublishGroups(pubsub)
    messages = [f"{key}/{n}" for n in range(30) for key in ("a", "b", "")]
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda message: _publish(groups, message), messages))

    assert ids == [f"id-{message}" for message in messages]
    assert pubsub.most_in_flight == {"a": 1, "b": 1, "": 1}
    for key in ("a", "b", ""):  # per key, the calls carry its messages in publish order
        sent = [m for _, call, _ in pubsub.calls for m in call if m.split("/")[0] == key]
        assert sent == [f"{key}/{n}" for n in range(30)]


@pytest.mark.parametrize(("limits", "expected"), [({"max_messages": 2}, [2, 2, 1]), ({"max_bytes": 25}, [2, 2, 1])])
def test_a_call_stays_within_the_message_and_byte_limits(limits: dict[str, int], expected: list[int]) -> None:
    pubsub = FakePubSub()
    groups = PublishGroups(pubsub, **limits)
    with ThreadPoolExecutor(8) as pool:
        with _during_first_call(pubsub, groups, pool) as first:
            rest = _start(pool, groups, [f"/{n}" for n in range(1, 6)])  # 10 bytes each
        assert [first.result(5)] + [f.result(5) for f in rest] == [f"id-/{n}" for n in range(6)]

    assert [len(messages) for _, messages, _ in pubsub.calls] == [1, *expected]


def test_a_failed_call_fails_each_of_its_messages_and_the_next_call_still_goes() -> None:
    pubsub = FakePubSub()
    groups = PublishGroups(pubsub)
    pubsub.failures[2] = ConnectionError("unavailable")
    with ThreadPoolExecutor(8) as pool:
        with _during_first_call(pubsub, groups, pool) as first:
            failing = _start(pool, groups, ["/1", "/2"])
        assert first.result(5) == "id-/0"  # the first call succeeded; the second fails
        for future in failing:
            with pytest.raises(ConnectionError, match="unavailable"):
                future.result(5)
        assert _publish(groups, "/3") == "id-/3"


def test_a_message_that_waits_past_its_timeout_is_withdrawn_and_never_sent() -> None:
    pubsub = FakePubSub()
    groups = PublishGroups(pubsub)
    with ThreadPoolExecutor(4) as pool:
        with _during_first_call(pubsub, groups, pool) as first:
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="within its timeout"):
                _publish(groups, "/late", timeout=0.2)
            waited = time.monotonic() - started
        assert first.result(5) == "id-/0"

    assert 0.2 <= waited < 2
    assert [messages for _, messages, _ in pubsub.calls] == [["/0"]]
    assert _publish(groups, "/next") == "id-/next"  # the key was handed back


def test_a_call_carries_the_shortest_deadline_among_its_messages() -> None:
    pubsub = FakePubSub()
    groups = PublishGroups(pubsub)
    with ThreadPoolExecutor(4) as pool:
        with _during_first_call(pubsub, groups, pool) as first:
            later = [
                pool.submit(_publish, groups, "/1", timeout=30.0),
                pool.submit(_publish, groups, "/2", timeout=3.0),
            ]
            time.sleep(0.1)
        assert [future.result(5) for future in [first, *later]] == ["id-/0", "id-/1", "id-/2"]

    _, messages, timeout = pubsub.calls[1]
    assert sorted(messages) == ["/1", "/2"]
    assert 2.0 < timeout < 3.0


def test_a_call_interrupted_by_a_stopping_worker_tells_the_other_callers_and_frees_the_key() -> None:
    pubsub = FakePubSub()
    groups = PublishGroups(pubsub)
    pubsub.failures[2] = SystemExit("worker stopping")  # raised in the thread sending the second call
    with ThreadPoolExecutor(8) as pool:
        with _during_first_call(pubsub, groups, pool) as first:
            sender, other = _start(pool, groups, ["/1", "/2"])
        assert first.result(5) == "id-/0"
        with pytest.raises(SystemExit):
            sender.result(5)
        with pytest.raises(RuntimeError, match="interrupted"):
            other.result(5)

    assert _publish(groups, "/3") == "id-/3"
