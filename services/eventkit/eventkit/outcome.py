"""What a handler's result or exception means for Pub/Sub: ack (2xx) or redeliver (5xx).

| what happened | status | HTTP | log |
| --- | --- | --- | --- |
| handled | ``processed`` | 200 | INFO |
| already handled (ledger hit) | ``duplicate`` | 200 | INFO |
| a type this consumer does not handle | ``ignored`` | 200 | DEBUG |
| :class:`PermanentError` (bad input) | ``rejected`` | 200 + failure record | ERROR |
| :class:`RetryableError` or a transient Google API error | ``retry`` | 503 | WARNING |
| any other exception (a bug, probably) | ``error`` | 500 | ERROR with stack trace |

Pub/Sub push acknowledges 102, 200, 201, 202 and 204 and redelivers on anything else with the subscription's
retry policy; after ``max_delivery_attempts`` the message goes to the dead-letter topic
(https://cloud.google.com/pubsub/docs/push#receive_push).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from eventkit.errors import PermanentError, is_retryable


class Status(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    REJECTED = "rejected"
    RETRY = "retry"
    ERROR = "error"


HTTP_STATUS = {
    Status.PROCESSED: 200,
    Status.DUPLICATE: 200,
    Status.IGNORED: 200,
    Status.REJECTED: 200,
    Status.RETRY: 503,
    Status.ERROR: 500,
}


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str | None = None
    message: str | None = None
    failure_id: str | None = None  # the failure record a rejection was filed under (``python -m dlq show ID``)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.status]


def classify(exc: BaseException) -> Outcome:
    """The outcome an exception stands for."""
    if isinstance(exc, PermanentError):
        return Outcome(Status.REJECTED, exc.reason, str(exc))
    if is_retryable(exc):
        return Outcome(Status.RETRY, type(exc).__name__, str(exc))
    return Outcome(Status.ERROR, type(exc).__name__, str(exc))
