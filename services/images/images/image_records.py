"""The Firestore record of what became of each upload: shapes and ids, pure.

- ``images/<record id>``: one document per source object *version* (bucket, name, generation), ``status``
  ``processed`` (with the renditions: name, width, height, size in bytes, content type) or ``rejected`` (with
  the reason). Its fields are the ``ImageProcessed`` / ``ImageRejected`` event data, plus status and time.
- ``image_sources/<source id>``: one document per source object, holding the newest generation handled, so an
  event for an older generation that arrives late is skipped.

Ids are hashes: object names may be up to 1024 bytes of any unicode and contain ``/``, which a Firestore
document id cannot; the readable name is in the document.
"""

from __future__ import annotations

import hashlib
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
        "updated_at": now,
    }
