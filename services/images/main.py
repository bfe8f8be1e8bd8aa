"""images: web renditions of every upload, written once, never looping on a hostile file.

Flow: an object finalized in the uploads bucket (Eventarc or a Cloud Storage notification, read by eventkit)
→ screen its metadata (images/upload_checks.py: own output? empty? too large?) → skip a version already
handled under the current settings, or superseded → stream the upload → Pillow pipeline (images/imaging.py): each
size in each format → write each rendition only if absent or made under other settings, then delete what the
settings no longer make (images/image_storage.py) → the Firestore record and the ``ImageProcessed`` /
``ImageRejected`` event in one transaction with the ledger entry (images/image_records.py), once per version and
settings fingerprint (``spec``).

The backfill (``python -m images.backfill``) re-renders versions recorded under other settings by sending their
notifications through this same path.

A permanent problem (empty, too large, a bomb, truncated, corrupt, not an image) is recorded as a rejection with
its reason and announced once; the delivery is acknowledged, and nothing is written to the renditions bucket.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from eventkit import FINALIZED_TYPE, Consumer, HandlerContext, ObjectFinalized
from eventkit.catalog.images import IMAGE_PROCESSED, IMAGE_REJECTED, ImageProcessed, ImageRejected, Rendition
from images.image_records import (
    IMAGE_SOURCES,
    IMAGES,
    image_record,
    is_current,
    record_id,
    source_id,
    source_record,
)
from images.image_settings import ImageSettings
from images.image_storage import NewerSourceError, delete_leftovers, download, object_info, write_rendition
from images.imaging import Converted, convert
from images.rejections import ImageRejectedError
from images.renditions import rendition_name, source_uri
from images.upload_checks import BACKFILL_SPEC_ATTRIBUTE, Action, is_stale, rendition_metadata, screen

IMAGE_EVENTS = "image-events"

log = logging.getLogger("images")
consumer = Consumer("images", topics=[IMAGE_EVENTS], buckets=["uploads", "renditions"])
settings = ImageSettings.from_env()
SPEC = settings.spec  # the fingerprint every record and rendition made here carries


@consumer.on(FINALIZED_TYPE, exactly_once=False)  # effects guarded here: renditions "only if absent", then one tx
def make_renditions(obj: ObjectFinalized, ctx: HandlerContext) -> None:
    storage = ctx.storage
    size, metadata = obj.size, obj.metadata
    if size is None:  # a notification with payloadFormat NONE carries no metadata
        info = object_info(storage, obj.bucket, obj.name, obj.generation)
        if info is None:
            return _skip("gone", obj)
        size, metadata = info.size, info.metadata

    screening = screen(
        bucket=obj.bucket,
        size=size,
        metadata=metadata,
        uploads_bucket=ctx.bucket("uploads"),
        max_bytes=settings.max_upload_bytes,
    )
    if screening.action is Action.IGNORE:
        return _skip(screening.reason, obj, screening.detail)
    if (wanted := _backfill_spec(ctx)) not in (None, SPEC):
        # Sent by a backfill under other settings (this instance an old revision, or the backfill misconfigured):
        # rendering here would undo what it is for.
        fields = {"backfill_spec": wanted, "spec": SPEC, "source": obj.key}
        log.warning("backfill under other settings than this service's", extra={"fields": fields})
        return _skip("backfill_spec_mismatch", obj, f"sent for spec {wanted}; this service renders {SPEC}")
    if (already := _already_handled(ctx, obj)) is not None:
        return _skip(already, obj)
    if screening.action is Action.REJECT:
        return _reject(ctx, obj, ImageRejectedError(screening.reason, screening.detail))

    source = download(storage, obj.bucket, obj.name, obj.generation)
    if source is None:
        return _skip("gone", obj)
    try:
        with source:
            converted = convert(
                source,
                settings.specs,
                encoding=settings.encoding,
                max_pixels=settings.max_pixels,
                threads=settings.threads,
            )
    except ImageRejectedError as rejection:
        return _reject(ctx, obj, rejection)

    try:
        written = _store(ctx, obj, converted)
    except NewerSourceError as exc:
        return _skip("superseded", obj, str(exc))

    processed = ImageProcessed(
        bucket=obj.bucket,
        name=obj.name,
        generation=obj.generation,
        format=converted.source_format,
        width=converted.width,
        height=converted.height,
        renditions=written,
        spec=SPEC,
    )
    ctx.transact(lambda c: _record(c, processed, IMAGE_PROCESSED), key=_once_key(obj))


def _store(ctx: HandlerContext, obj: ObjectFinalized, converted: Converted) -> list[Rendition]:
    """Write every rendition (only if absent, or made from an older version or under other settings), then delete
    what these settings no longer make; raises NewerSourceError when a newer version already wrote one."""
    storage, renditions_bucket = ctx.storage, ctx.bucket("renditions")
    marker = source_uri(obj.bucket, obj.name, obj.generation)
    written: list[Rendition] = []
    for rendition in converted.renditions:
        name = rendition_name(obj.name, rendition.label, rendition.format)
        result = write_rendition(
            storage,
            renditions_bucket,
            name,
            rendition.data,
            content_type=rendition.content_type,
            cache_control=settings.cache_control,
            metadata=rendition_metadata(marker, obj.generation, rendition.label, SPEC),
            source_generation=obj.generation,
        )
        log.info(
            "rendition written" if result.written else "rendition already there",
            extra={"fields": {"rendition": name, "bytes": result.size, "source": obj.key}},
        )
        written.append(
            Rendition(
                label=rendition.label,
                format=rendition.format.lower(),  # type: ignore[arg-type]
                bucket=renditions_bucket,
                name=name,
                width=rendition.width,
                height=rendition.height,
                size=result.size,
                content_type=rendition.content_type,
            )
        )
    # Before the record: a redelivery after a failed delete finds the record not yet written and deletes again.
    for name in delete_leftovers(
        storage,
        renditions_bucket,
        source_bucket=obj.bucket,
        source_name=obj.name,
        source_generation=obj.generation,
        keep={rendition.name for rendition in written},
    ):
        log.info("rendition deleted", extra={"fields": {"rendition": name, "source": obj.key, "spec": SPEC}})
    return written


def _reject(ctx: HandlerContext, obj: ObjectFinalized, rejection: ImageRejectedError) -> None:
    """Record and announce the rejection once; then let eventkit acknowledge it and file it under ``failures``."""
    rejected = ImageRejected(
        bucket=obj.bucket, name=obj.name, generation=obj.generation, reason=rejection.reason, detail=rejection.detail
    )
    once = ctx.transact(lambda c: _record(c, rejected, IMAGE_REJECTED), key=_once_key(obj))
    if not once.duplicate and once.result:
        raise rejection  # PermanentError: 200, an ERROR log line and a failure record, never a retry


def _record(c: HandlerContext, outcome: ImageProcessed | ImageRejected, event_type: str) -> bool:
    """In the ledger's transaction: the record, the source's newest generation, and the event (outbox); nothing
    when a newer version was recorded, or this one already under these settings (another delivery, another key)."""
    tx, now = c.transaction, datetime.now(UTC)
    source_ref = c.db.collection(IMAGE_SOURCES).document(source_id(outcome.bucket, outcome.name))
    record_ref = c.db.collection(IMAGES).document(record_id(outcome.bucket, outcome.name, outcome.generation))
    latest, existing = c.get_all([source_ref, record_ref])
    if is_stale(outcome.generation, latest.get("generation") if latest.exists else None):
        return False
    if is_current(existing.to_dict() if existing.exists else None, SPEC):
        return False
    tx.set(record_ref, image_record(outcome, now))
    tx.set(source_ref, source_record(outcome, now))
    c.emit(IMAGE_EVENTS, event_type, outcome, subject=outcome.name)
    return True


def _already_handled(ctx: HandlerContext, obj: ObjectFinalized) -> str | None:
    """Cheap check before any download: this version recorded already under these settings, or a newer one handled."""
    db = ctx.db
    record = db.collection(IMAGES).document(record_id(obj.bucket, obj.name, obj.generation)).get()
    if is_current(record.to_dict() if record.exists else None, SPEC):
        return "already_recorded"
    latest = db.collection(IMAGE_SOURCES).document(source_id(obj.bucket, obj.name)).get()
    if is_stale(obj.generation, latest.get("generation") if latest.exists else None):
        return "superseded"
    return None


def _backfill_spec(ctx: HandlerContext) -> str | None:
    """The settings fingerprint a backfill sent this notification for (images/backfill.py); None for an upload's."""
    message = ctx.delivery.message
    return message.attributes.get(BACKFILL_SPEC_ATTRIBUTE) if message else None


def _once_key(obj: ObjectFinalized) -> str:
    """One record per version and settings: a re-render under new settings is a new write, not a duplicate."""
    return f"{obj.key}@{SPEC}"


def _skip(reason: str, obj: ObjectFinalized, detail: str = "") -> None:
    log.info("skipped", extra={"fields": {"skip_reason": reason, "detail": detail, "source": obj.key}})


def handle_event(request: Any) -> tuple[str, int, dict[str, str]]:
    """functions-framework target (signature type http): every delivery form goes through eventkit."""
    return consumer.handle(request)
