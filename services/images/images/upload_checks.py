"""What to do with a finalized object before downloading a byte of it: pure decisions over its metadata.

- Objects outside the uploads bucket, and objects carrying the rendition marker, are *ignored*: the converter
  never processes its own output, even if a trigger is misconfigured to point at the renditions bucket.
- Zero-byte and over-limit objects are *rejected* (size from the object metadata, so a 5 GB upload is never
  downloaded to find out).
- An event for an older generation than one already handled is *stale* and skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

# Custom metadata every rendition carries (x-goog-meta-*): the marker, and where it came from.
MARKER_KEY = "shop-rendition-of"
SOURCE_GENERATION_KEY = "shop-source-generation"
LABEL_KEY = "shop-rendition"
SPEC_KEY = "shop-rendition-spec"
# The attribute images/backfill.py puts on the notifications it sends: the settings fingerprint it wants.
BACKFILL_SPEC_ATTRIBUTE = "shopBackfillSpec"


class Action(StrEnum):
    CONVERT = "convert"
    IGNORE = "ignore"
    REJECT = "reject"


@dataclass(frozen=True)
class Screening:
    action: Action
    reason: str = ""
    detail: str = ""


def screen(*, bucket: str, size: int, metadata: Mapping[str, str], uploads_bucket: str, max_bytes: int) -> Screening:
    """Decide from the object's metadata alone whether to download and convert it."""
    if bucket != uploads_bucket:
        return Screening(Action.IGNORE, "not_uploads_bucket", f"bucket {bucket!r} is not {uploads_bucket!r}")
    if MARKER_KEY in metadata:
        return Screening(Action.IGNORE, "own_output", f"a rendition of {metadata[MARKER_KEY]}")
    if size == 0:
        return Screening(Action.REJECT, "empty", "the object is empty (0 bytes)")
    if size > max_bytes:
        return Screening(Action.REJECT, "too_large", f"the object is {size} bytes; the limit is {max_bytes}")
    return Screening(Action.CONVERT)


def is_stale(generation: int, latest_handled: int | None) -> bool:
    """An event for an older generation than the newest one already handled changes nothing."""
    return latest_handled is not None and generation < latest_handled


def rendition_metadata(source: str, generation: int, label: str, spec: str) -> dict[str, str]:
    return {MARKER_KEY: source, SOURCE_GENERATION_KEY: str(generation), LABEL_KEY: label, SPEC_KEY: spec}
