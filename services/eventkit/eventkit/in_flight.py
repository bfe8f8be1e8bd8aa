"""A counter of work under way in this process: ``with counter:`` around it, ``counter.others()`` inside it.

The outbox queues its "sent" marks for a batched write only while another request is publishing (more traffic is
coming, and on Cloud Run, with CPU allocated only during requests, the background writer gets CPU while a
request is in flight).
"""

from __future__ import annotations

import threading


class InFlight:
    def __init__(self) -> None:
        self._count, self._lock = 0, threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self._count += 1

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._count -= 1

    def others(self) -> bool:
        """Is anything else under way besides the caller's own (which it entered)?"""
        with self._lock:
            return self._count > 1
