"""Cloud Storage at the service's edges: read one upload version, write renditions exactly once.

Uploads are streamed to a spooled file (memory up to a few MiB, then disk) and decoded from there, so neither
the download nor the decoder ever holds a second copy of a large upload.

Renditions are written with ``if_generation_match=0`` ("only if absent"): a redelivered event finds them
there and never rewrites them. The name is stable per source object (``<name>/<label>.<ext>``), so when a new
generation of the source is uploaded, the existing rendition is replaced only if it was made from an *older*
source generation (conditionally on its own generation); one made from a *newer* source means this event is
stale.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from eventkit.errors import RetryableError
from images.upload_checks import SOURCE_GENERATION_KEY

log = logging.getLogger("images.storage")

SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024
DOWNLOAD_CHUNK_BYTES = 4 * 1024 * 1024
CALL_TIMEOUT_SECONDS = 30


class NewerSourceError(Exception):
    """A rendition made from a newer generation of the source already exists: this event is stale."""


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    metadata: dict[str, str]
    content_type: str | None


@dataclass(frozen=True)
class WrittenRendition:
    name: str
    size: int
    written: bool  # False: it was already there from an earlier delivery of the same source version


def object_info(client: Any, bucket: str, name: str, generation: int) -> ObjectInfo | None:
    """Metadata of one object version (for notifications sent with payloadFormat NONE); None if it is gone."""
    blob = client.bucket(bucket).get_blob(name, generation=generation, timeout=CALL_TIMEOUT_SECONDS)
    if blob is None:
        return None
    return ObjectInfo(size=int(blob.size or 0), metadata=dict(blob.metadata or {}), content_type=blob.content_type)


def download(client: Any, bucket: str, name: str, generation: int) -> IO[bytes] | None:
    """That exact generation, streamed into a spooled file positioned at 0; None if it no longer exists."""
    from google.api_core.exceptions import NotFound  # here, not at module level: see write_rendition

    blob = client.bucket(bucket).blob(name, generation=generation, chunk_size=DOWNLOAD_CHUNK_BYTES)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 — the caller closes it
    try:
        blob.download_to_file(spool, timeout=CALL_TIMEOUT_SECONDS)
    except NotFound:
        spool.close()
        return None
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def write_rendition(
    client: Any,
    bucket: str,
    name: str,
    data: bytes,
    *,
    content_type: str,
    cache_control: str,
    metadata: dict[str, str],
    source_generation: int,
) -> WrittenRendition:
    """Write once: absent → create; present from this source version → keep; from an older one → replace."""
    # Imported here, not at module level: google.api_core (and grpc under it) are a large share of a cold start,
    # and the first delivery builds the Storage client, which imports it anyway (as eventkit.publish).
    from google.api_core.exceptions import PreconditionFailed

    target = client.bucket(bucket)
    try:
        _upload(target, name, data, content_type, cache_control, metadata, if_generation_match=0)
        return WrittenRendition(name, len(data), written=True)
    except PreconditionFailed:
        pass
    existing = target.get_blob(name, timeout=CALL_TIMEOUT_SECONDS)
    if existing is None:  # deleted in between: Pub/Sub's retry will create it
        raise RetryableError(f"gs://{bucket}/{name} vanished while being written; retrying")
    made_from = int((existing.metadata or {}).get(SOURCE_GENERATION_KEY, "0") or 0)
    if made_from == source_generation:
        return WrittenRendition(name, int(existing.size or 0), written=False)
    if made_from > source_generation:
        raise NewerSourceError(f"gs://{bucket}/{name} was made from source generation {made_from}")
    try:
        _upload(target, name, data, content_type, cache_control, metadata, if_generation_match=existing.generation)
    except PreconditionFailed:
        raise RetryableError(f"gs://{bucket}/{name} changed while being replaced; retrying") from None
    return WrittenRendition(name, len(data), written=True)


def _upload(
    bucket: Any,
    name: str,
    data: bytes,
    content_type: str,
    cache_control: str,
    metadata: dict[str, str],
    *,
    if_generation_match: int,
) -> None:
    blob = bucket.blob(name)
    blob.cache_control = cache_control
    blob.metadata = metadata
    blob.upload_from_string(
        data, content_type=content_type, if_generation_match=if_generation_match, timeout=CALL_TIMEOUT_SECONDS
    )
