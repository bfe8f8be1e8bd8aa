"""The recent images: what the console uploaded (still waiting, or done) and what the images service recorded.

Two short Firestore queries, newest first: the console's own uploads (``console_uploads``) and the images
service's records (``images``: one per object version, ``processed`` with its renditions or ``rejected`` with its
reason; services/images/images/image_records.py). Both are keyed by the same record id, so an upload and its
outcome meet; an upload with no record yet is *waiting*.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from console.image_uploads import CONSOLE_UPLOADS

IMAGES = "images"  # the images service's records (images.image_records.IMAGES; a unit test keeps them equal)
RECENT = 20
WAITING, PROCESSED, REJECTED = "waiting", "processed", "rejected"
# What the images service's rejection reasons (eventkit.catalog.images.RejectionReason) mean to an operator.
REASONS = {
    "empty": "the file is empty",
    "too_large": "the file is over the size limit",
    "too_many_pixels": "the image has too many pixels",
    "not_an_image": "the file is not an image",
    "unsupported_format": "the image format is not supported",
    "truncated": "the file ends before the image does",
    "corrupt": "the image data is corrupt",
}
# Browsers show these inline; the order is which one the page shows when a size has several.
SHOWN_FORMATS = ("jpeg", "png", "webp", "avif")


def record_id(bucket: str, name: str, generation: int) -> str:
    """The images service's document id of one object version (images.image_records.record_id)."""
    return hashlib.sha256(f"{bucket}\0{name}\0{generation}".encode()).hexdigest()[:40]


def rendition_url(name: str) -> str:
    return "/images/renditions/" + quote(name, safe="/")


@dataclass(frozen=True)
class RenditionFile:
    format: str
    size: int
    url: str


@dataclass(frozen=True)
class RenditionSize:
    label: str
    width: int
    height: int
    files: tuple[RenditionFile, ...]

    @property
    def shown(self) -> RenditionFile:
        ranked = sorted(self.files, key=lambda f: SHOWN_FORMATS.index(f.format) if f.format in SHOWN_FORMATS else 9)
        return ranked[0]


@dataclass(frozen=True)
class ImageEntry:
    id: str
    name: str
    filename: str
    status: str
    when: datetime | None
    size: int | None = None
    source_format: str = ""
    width: int | None = None
    height: int | None = None
    renditions: tuple[RenditionSize, ...] = field(default_factory=tuple)
    reason: str = ""
    reason_text: str = ""
    detail: str = ""
    when_label: str = "Uploaded"


def entry(entry_id: str, upload: Mapping[str, Any] | None, record: Mapping[str, Any] | None) -> ImageEntry:
    """One image as the page shows it, from the console's upload note and the images service's record (either
    may be missing: an upload not processed yet, or an object uploaded from elsewhere)."""
    source = record or upload or {}
    name = str(source.get("name", ""))
    filename = str((upload or {}).get("filename") or name.rsplit("/", 1)[-1])
    when = (upload or {}).get("uploaded_at") or (record or {}).get("recorded_at")
    size = (upload or {}).get("size")
    label = "Uploaded" if upload else "Recorded"
    if record is None:
        return ImageEntry(entry_id, name, filename, WAITING, when, size)
    if record.get("status") == REJECTED:
        reason = str(record.get("reason", ""))
        return ImageEntry(
            entry_id,
            name,
            filename,
            REJECTED,
            when,
            size,
            reason=reason,
            reason_text=REASONS.get(reason, reason.replace("_", " ")),
            detail=str(record.get("detail", "")),
            when_label=label,
        )
    return ImageEntry(
        entry_id,
        name,
        filename,
        PROCESSED,
        when,
        size,
        source_format=str(record.get("format", "")),
        width=record.get("width"),
        height=record.get("height"),
        renditions=sizes(record.get("renditions") or []),
        when_label=label,
    )


def sizes(renditions: Iterable[Mapping[str, Any]]) -> tuple[RenditionSize, ...]:
    """Renditions grouped by size label, largest first, each with its files (one per format)."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for rendition in renditions:
        grouped.setdefault(str(rendition["label"]), []).append(rendition)
    result = [
        RenditionSize(
            label=label,
            width=int(files[0]["width"]),
            height=int(files[0]["height"]),
            files=tuple(
                RenditionFile(
                    format=str(f.get("format") or f["name"].rsplit(".", 1)[-1]),
                    size=int(f.get("size", 0)),
                    url=rendition_url(str(f["name"])),
                )
                for f in files
            ),
        )
        for label, files in grouped.items()
    ]
    return tuple(sorted(result, key=lambda s: s.width * s.height, reverse=True))


def merged(
    uploads: Mapping[str, Mapping[str, Any]], records: Mapping[str, Mapping[str, Any]], limit: int = RECENT
) -> list[ImageEntry]:
    """The newest ``limit`` images, an upload and its record as one entry."""
    entries = [entry(i, uploads.get(i), records.get(i)) for i in {*uploads, *records}]
    newest = sorted(entries, key=lambda e: (e.when.timestamp() if e.when else 0.0, e.id), reverse=True)
    return newest[:limit]


def recent(db: Any, limit: int = RECENT) -> list[ImageEntry]:
    from google.cloud.firestore import Query

    uploads = {
        s.id: s.to_dict()
        for s in db.collection(CONSOLE_UPLOADS)
        .order_by("uploaded_at", direction=Query.DESCENDING)
        .limit(limit)
        .stream()
    }
    records = {
        s.id: s.to_dict()
        for s in db.collection(IMAGES).order_by("recorded_at", direction=Query.DESCENDING).limit(limit).stream()
    }
    # An upload whose record is older than the newest ``limit`` records (a slow day): fetch it by id.
    missing = [db.collection(IMAGES).document(i) for i in uploads if i not in records]
    if missing:
        records.update({s.id: s.to_dict() for s in db.get_all(missing) if s.exists})
    return merged(uploads, records, limit)


def waiting_count(entries: Iterable[ImageEntry]) -> int:
    return sum(1 for e in entries if e.status == WAITING)
