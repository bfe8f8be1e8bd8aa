"""Cloud Storage at the service's edges: read one upload version, write renditions exactly once.

Uploads are streamed to a spooled file (memory up to a few MiB, then disk) and decoded from there, so neither
the download nor the decoder ever holds a second copy of a large upload.

Renditions are written with ``if_generation_match=0`` ("only if absent"): a redelivered event finds them
there and never rewrites them. The name is stable per source object (``<name>/<label>.<ext>``), so when a new
generation of the source is uploaded, or the same one is rendered under new settings (another ``spec``), the
existing rendition is replaced only if it was made from an *older* source generation or under another spec
(conditionally on its own generation); one made from a *newer* source means this event is stale.

After a (re-)render, what no longer belongs to the settings (a size or a format dropped) is deleted, so the
renditions of one source never mix two specs.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from eventkit.errors import RetryableError
from images.renditions import source_uri
from images.upload_checks import MARKER_KEY, SOURCE_GENERATION_KEY, SPEC_KEY

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
    """Write once: absent → create; present from this source version and spec → keep; from an older version or
    another spec → replace; from a newer version → NewerSourceError."""
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
    same_spec = (existing.metadata or {}).get(SPEC_KEY) == metadata.get(SPEC_KEY)
    if made_from == source_generation and same_spec:
        return WrittenRendition(name, int(existing.size or 0), written=False)
    if made_from > source_generation:
        raise NewerSourceError(f"gs://{bucket}/{name} was made from source generation {made_from}")
    try:
        _upload(target, name, data, content_type, cache_control, metadata, if_generation_match=existing.generation)
    except PreconditionFailed:
        raise RetryableError(f"gs://{bucket}/{name} changed while being replaced; retrying") from None
    return WrittenRendition(name, len(data), written=True)


def delete_leftovers(
    client: Any, bucket: str, *, source_bucket: str, source_name: str, source_generation: int, keep: set[str]
) -> list[str]:
    """Delete the renditions of that source not in ``keep`` and made from this source generation or an older one;
    the names deleted.

    Listed one level under ``<source name>/`` (the delimiter leaves out the renditions of another upload whose name
    starts the same way), and matched by the marker each rendition carries."""
    from google.api_core.exceptions import NotFound, PreconditionFailed

    source = source_uri(source_bucket, source_name, 0).rpartition("#")[0]
    deleted = []
    for blob in client.list_blobs(bucket, prefix=f"{source_name}/", delimiter="/", timeout=CALL_TIMEOUT_SECONDS):
        made_from, _, generation = (blob.metadata or {}).get(MARKER_KEY, "").rpartition("#")
        if blob.name in keep or made_from != source or not generation.isdigit() or int(generation) > source_generation:
            continue
        try:
            blob.delete(if_generation_match=blob.generation, timeout=CALL_TIMEOUT_SECONDS)
        except (NotFound, PreconditionFailed):
            continue  # gone already, or rewritten since it was listed: not this render's to delete
        deleted.append(blob.name)
    return deleted


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
