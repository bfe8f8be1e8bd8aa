"""Running a Firestore transaction under contention: retry aborts with jittered backoff, within a budget.

Firestore locks the documents a transaction reads. Two transactions that read the same document and then
write it abort each other ("Transaction lock timeout"); the client library retries at once, which can repeat
the collision. Retrying with jitter spreads the attempts; past the budget the caller gets a
:class:`RetryableError` (a consumer answers 503 and Pub/Sub redelivers; an API answers 503).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from eventkit.errors import RetryableError

T = TypeVar("T")
CONTENTION_BUDGET_SECONDS = 30.0


def run_transaction(
    client: Any, attempt: Callable[[Any], T], what: str, budget: float = CONTENTION_BUDGET_SECONDS
) -> T:
    """Run a ``@firestore.transactional`` function until it commits, or raise RetryableError after ``budget``."""
    from google.api_core.exceptions import Aborted

    deadline = time.monotonic() + budget
    tries = 0
    while True:
        try:
            return attempt(client.transaction(max_attempts=1))
        except (Aborted, ValueError) as exc:
            # The client reports a failed commit as ValueError("Failed to commit ...") from Aborted.
            if not (isinstance(exc, Aborted) or isinstance(exc.__cause__, Aborted)):
                raise
            tries += 1
            if time.monotonic() >= deadline:
                raise RetryableError(f"transaction for {what} kept aborting ({tries} tries)") from exc
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2**tries)))
