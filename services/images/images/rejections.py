"""Why an upload can never be converted: a reason code (the ``ImageRejected`` event's ``reason``) and a detail.

:class:`ImageRejectedError` is an eventkit :class:`~eventkit.errors.PermanentError`: the delivery is
acknowledged (never retried in a loop) and recorded in ``failures`` beside the service's own rejection record.
"""

from __future__ import annotations

from eventkit.errors import PermanentError

REASONS = ("empty", "too_large", "too_many_pixels", "not_an_image", "unsupported_format", "truncated", "corrupt")


class ImageRejectedError(PermanentError):
    """The upload is not a convertible image; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r} (known: {', '.join(REASONS)})")
        super().__init__(detail, reason=reason)
        self.detail = detail
