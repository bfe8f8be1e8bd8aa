"""The Firestore record of what became of each upload: shapes and ids, pure.

- ``images/<record id>``: one document per source object *version* (bucket, name, generation), ``status``
  ``processed`` (with every variant: label, format, name, width, height, size in bytes, content type, and the
  ``spec`` fingerprint of the settings that made them) or ``rejected`` (with the reason). Its fields are the
  ``ImageProcessed`` / ``ImageRejected`` event data, plus status and time. A re-render replaces it.
- ``image_sources/<source id>``: one document per source object, holding the newest generation handled (and its
  ``spec``), so an event for an older generation that arrives late is skipped.

A processed version whose record carries another ``spec`` than the service's is *stale*: the backfill
(images/backfill.py) sends it through the upload path again. Rejections do not depend on the rendition settings
and are never stale.

Ids are hashes: object names may be up to 1024 bytes of any unicode and contain ``/``, which a Firestore
document id cannot; the readable name is in the document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from eventkit.catalog.images import ImageProcessed, ImageRejected

IMAGES = "images"
IMAGE_SOURCES = "image_sources"


def record_id(bucket: str, name: str, generation: int) -> str:
    return hashlib.sha256(f"{bucket}\0{name}\0{generation}".encode()).hexdigest()[:40]


def source_id(bucket: str, name: str) -> str:
    return hashlib.sha256(f"{bucket}\0{name}".encode()).hexdigest()[:40]


def image_record(outcome: ImageProcessed | ImageRejected, now: datetime) -> dict[str, Any]:
    status = "processed" if isinstance(outcome, ImageProcessed) else "rejected"
    return {"status": status, **outcome.model_dump(mode="json"), "recorded_at": now}


def source_record(outcome: ImageProcessed | ImageRejected, now: datetime) -> dict[str, Any]:
    return {
        "bucket": outcome.bucket,
        "name": outcome.name,
        "generation": outcome.generation,
        "record": record_id(outcome.bucket, outcome.name, outcome.generation),
        "status": "processed" if isinstance(outcome, ImageProcessed) else "rejected",
        "spec": outcome.spec if isinstance(outcome, ImageProcessed) else None,
        "updated_at": now,
    }


def is_current(record: Mapping[str, Any] | None, spec: str) -> bool:
    """The version's record says it is done under ``spec``: rendered under it, or rejected (under any)."""
    if record is None:
        return False
    return record.get("status") == "rejected" or record.get("spec") == spec


def staleness(generation: int, source: Mapping[str, Any] | None, spec: str) -> str | None:
    """Why the object version ``generation`` needs rendering, from its source document; None when it does not.

    ``missing``: never handled (or only an older generation was); ``stale``: rendered under another spec."""
    if source is None or int(source.get("generation", -1)) < generation:
        return "missing"
    if int(source["generation"]) > generation:
        return None  # a newer version was handled: this listing is out of date
    return None if is_current(source, spec) else "stale"
