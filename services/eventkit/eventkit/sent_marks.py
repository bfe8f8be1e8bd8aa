"""Outbox "sent" marks written in batches: one Firestore write every few milliseconds instead of one per event.

After a publish succeeds, its outbox entry only needs ``sent: true`` so the sweeper leaves it alone — and the
sweeper only looks at entries older than 30 s. So the marks of a busy instance can wait a few milliseconds and
go out together in one batched write (up to 500 per commit), which takes a Firestore round trip off every event
(bench/push_path.py, docs/performance.md). A mark that never lands (the process dies first, or the batch fails)
costs what a crash between publish and mark always cost: the sweeper publishes that event again, and consumers
drop the duplicate by its CloudEvent id.

One background thread per instance, started on first use; marks still pending at exit are written then. The
outbox queues marks only while another request is in flight (service.py), and the last request out writes what is
still queued before it answers: on Cloud Run, with CPU allocated only during requests, no mark waits for the next
request.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

BATCH_LIMIT = 500  # Firestore's limit of writes per batched commit


class SentMarks:
    def __init__(
        self,
        ref: Callable[[str], Any],
        client: Any,
        *,
        retention: timedelta,
        delay: float = 0.02,
        max_batch: int = 200,
    ) -> None:
        self._ref, self._client, self._retention = ref, client, retention
        self.delay, self.max_batch = delay, min(max_batch, BATCH_LIMIT)
        self._pending: list[tuple[str, str, datetime]] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, event_id: str, message_id: str) -> None:
        """Queue the mark of one published entry; it is written within ``delay`` seconds."""
        with self._wake:
            self._pending.append((event_id, message_id, datetime.now(UTC)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="outbox-sent-marks", daemon=True)
                self._thread.start()
                atexit.register(self.flush)
            self._wake.notify()

    @property
    def pending(self) -> int:
        with self._wake:
            return len(self._pending)

    def flush(self) -> int:
        """Write every queued mark now (batched); the number written. Failures are logged, not raised."""
        with self._wake:
            marks, self._pending = self._pending, []
        written = 0
        for start in range(0, len(marks), BATCH_LIMIT):
            chunk = marks[start : start + BATCH_LIMIT]
            batch = self._client.batch()
            for event_id, message_id, sent_at in chunk:
                fields = {"sent": True, "sent_at": sent_at, "message_id": message_id}
                # merge, not update: a batch fails as a whole if one document is missing
                batch.set(self._ref(event_id), fields | {"expires_at": sent_at + self._retention}, merge=True)
            try:
                batch.commit()
                written += len(chunk)
            except Exception as exc:
                log.warning(
                    "outbox sent marks not written; the sweeper will publish those events again (consumers dedupe)",
                    extra={"fields": {"events": len(chunk), "error": str(exc)}},
                )
        return written

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                # Gather company for at most ``delay`` after the first mark, or until the batch is full.
                deadline = time.monotonic() + self.delay
                while len(self._pending) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                    self._wake.wait(left)
            self.flush()
