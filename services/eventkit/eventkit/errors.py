"""Exceptions that decide what happens to a delivery.

A consumer raises :class:`RetryableError` for trouble that may pass (Pub/Sub redelivers with backoff) and
:class:`PermanentError` for input that will never succeed (acknowledged, recorded, logged at ERROR).
"""

from __future__ import annotations


class EventkitError(Exception):
    """Base of every error eventkit raises on purpose."""


class ConfigError(EventkitError):
    """An environment variable is missing or malformed; raised at start-up."""


class RetryableError(EventkitError):
    """Transient trouble: answer 5xx so Pub/Sub redelivers with the subscription's backoff."""


class PermanentError(EventkitError):
    """The delivery can never succeed: acknowledge it, record it, log why.

    ``reason`` is a short machine-readable code (``malformed_delivery``, ``invalid_payload`` ...); the
    message says what was wrong and what was expected.
    """

    reason = "permanent_failure"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class MalformedDeliveryError(PermanentError):
    """The HTTP request is not any delivery form eventkit knows (bad JSON, missing message, bad base64)."""

    reason = "malformed_delivery"


class UnknownEventTypeError(PermanentError):
    """The CloudEvent type is not in the catalog (or is a schema version nobody handles)."""

    reason = "unknown_event_type"


class InvalidPayloadError(PermanentError):
    """The event data does not match the payload model of its type; the message names the field."""

    reason = "invalid_payload"


class PayloadTooLargeError(PermanentError):
    """The request body exceeds the configured limit."""

    reason = "payload_too_large"


class IdempotencyKeyConflictError(PermanentError):
    """The same idempotency key arrived with a different payload: a producer bug, never retried."""

    reason = "idempotency_key_reused"


class LeaseHeldError(RetryableError):
    """Another delivery of the same event holds the in-progress lease; retry after it expires or completes."""


def is_retryable(exc: BaseException) -> bool:
    """Trouble that may pass: a RetryableError, a timeout, a lost connection, or a Google API error worth a retry
    (the service was busy or slow, or a transaction lost a race)."""
    if isinstance(exc, (RetryableError, TimeoutError, ConnectionError)):
        return True
    from google.api_core import exceptions as api  # only once something failed: not on the import path

    transient = (
        api.ServiceUnavailable,
        api.DeadlineExceeded,
        api.Aborted,
        api.InternalServerError,
        api.TooManyRequests,
        api.Unknown,
        api.RetryError,
    )
    return isinstance(exc, transient)
