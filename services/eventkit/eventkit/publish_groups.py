"""Group commit for Pub/Sub publishes: one Publish call at a time per topic and ordering key, no timer.

A message whose topic (and ordering key) has no Publish call under way is sent at once, from the caller's thread.
Messages that arrive while a call is under way wait for it to return, then go together in the next call, sent by
the first of them (its caller's thread) — so a message waits at most one round trip for company, and batches
grow with the load instead of with a fixed window. The client library's batches instead hold every message up to
``max_latency`` (10 ms by default) and send it from a commit thread: under moderate load each publishing request
held a server thread that long (bench/push_latency.py, docs/performance.md).

Pub/Sub's limits for one call hold: all messages share one ordering key (the service refuses a request that mixes
them), at most 1,000 messages and 10 MB. Per ordering key, calls follow each other in publish order. Each caller
waits at most its own ``timeout``: a call carries the shortest deadline among its messages, and a message still
waiting for a call when its time is up is withdrawn and its caller told so (``TimeoutError``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

MAX_MESSAGES = 1_000  # Pub/Sub's limit of messages per Publish call
MAX_BYTES = 9_000_000  # under the 10 MB request limit, with room for the request's own framing

# (topic path, messages, timeout in seconds) -> the message ids, in the messages' order
PublishCall = Callable[[str, list[Any], float], Sequence[str]]


class _Waiting:
    """One caller's message; ``done`` is set when it has an outcome, or when it is to send the next call."""

    __slots__ = ("deadline", "done", "error", "lead", "message", "message_id", "size")

    def __init__(self, message: Any, size: int, deadline: float) -> None:
        self.message, self.size, self.deadline = message, size, deadline
        self.done = threading.Event()
        self.message_id: str | None = None
        self.error: BaseException | None = None
        self.lead = False


class PublishGroups:
    def __init__(self, call: PublishCall, *, max_messages: int = MAX_MESSAGES, max_bytes: int = MAX_BYTES) -> None:
        self._call = call
        self.max_messages, self.max_bytes = max_messages, max_bytes
        self._lock = threading.Lock()
        # A key is present while a call for it is under way; its list holds the messages waiting for the next.
        self._waiting: dict[tuple[str, str], list[_Waiting]] = {}

    def publish(self, topic: str, ordering_key: str, message: Any, size: int, timeout: float) -> str:
        """Send ``message`` (``size`` bytes) and return its message id; raise what its call raised."""
        key = (topic, ordering_key)
        me = _Waiting(message, size, time.monotonic() + timeout)
        with self._lock:
            if key in self._waiting:
                self._waiting[key].append(me)
            else:
                self._waiting[key] = []
                me.lead = True
        if not me.lead:
            self._wait(key, me)
        if me.lead:
            self._send_from(key, me)
        if me.error is not None:
            raise me.error
        assert me.message_id is not None
        return me.message_id

    def _wait(self, key: tuple[str, str], me: _Waiting) -> None:
        if me.done.wait(max(0.0, me.deadline - time.monotonic())):
            return
        with self._lock:
            queue = self._waiting.get(key)
            if queue is not None and any(waiting is me for waiting in queue):
                queue.remove(me)
                me.error = TimeoutError(f"no Publish call to {key[0]} could take the message within its timeout")
                return
        # Taken into a call just now (bounded by the call's deadline, which is at most this one's) or chosen to
        # send the next: either way, not for long.
        me.done.wait()

    def _send_from(self, key: tuple[str, str], me: _Waiting) -> None:
        """Send ``me`` and whatever waits behind it (within the limits), then hand the key to the next waiter."""
        with self._lock:
            batch = [me, *self._take(self._waiting[key], me.size)]
        now = time.monotonic()
        live = [waiting for waiting in batch if waiting.deadline > now]
        for waiting in batch:
            if waiting.deadline <= now:
                waiting.error = TimeoutError(f"no Publish call to {key[0]} could take the message within its timeout")
        try:
            if live:
                ids = self._call(key[0], [waiting.message for waiting in live], min(w.deadline for w in live) - now)
                for waiting, message_id in zip(live, ids, strict=True):
                    waiting.message_id = str(message_id)
        except Exception as exc:  # every message of the call shares its outcome
            for waiting in live:
                waiting.error = exc
        finally:
            for waiting in live:  # interrupted by a BaseException (a worker being stopped): tell the others too
                if waiting.message_id is None and waiting.error is None:
                    waiting.error = RuntimeError(f"the Publish call to {key[0]} carrying this message was interrupted")
            with self._lock:
                queue = self._waiting[key]
                if queue:
                    successor = queue.pop(0)
                    successor.lead = True
                    successor.done.set()
                else:
                    del self._waiting[key]
            for waiting in batch[1:]:
                waiting.done.set()

    def _take(self, queue: list[_Waiting], used: int) -> list[_Waiting]:
        """The waiters at the front of ``queue`` that fit in one call beside ``used`` bytes (lock held)."""
        count = 0
        while count < len(queue) and count + 1 < self.max_messages and used + queue[count].size <= self.max_bytes:
            used += queue[count].size
            count += 1
        taken, queue[:count] = queue[:count], []
        return taken
