"""A photo uploaded from the console: its size limit, the object name it is stored under, and the write.

The object goes into the uploads bucket, where the images service picks it up as it does any upload (its
OBJECT_FINALIZE notification, or Eventarc). The console checks the size against the images service's own limit
before storing (``IMAGE_MAX_UPLOAD_BYTES``, the same variable and default: eventkit.catalog.images), and writes
each upload under a new name with ``ifGenerationMatch=0``: it never replaces an object, so its identity needs
object *create* on the bucket and nothing more.

Each upload is noted in ``console_uploads/<record id>`` (the id of the images service's record of that object
version), so the page can list it while it waits for its renditions.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from eventkit import positive_int
from eventkit.catalog.images import DEFAULT_MAX_UPLOAD_BYTES, MAX_UPLOAD_BYTES_VARIABLE
from eventkit.errors import ConfigError

CONSOLE_UPLOADS = "console_uploads"
PREFIX = "console"  # every console upload's name starts here: uploads from elsewhere keep their own names
MAX_FILENAME_CHARS = 100
# A multipart body holds the file plus its boundaries, headers and the token: this much above the limit.
FORM_OVERHEAD_BYTES = 16 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadRefused(Exception):
    """The upload was not stored: the message says why, in words the operator can act on."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StoredUpload:
    bucket: str
    name: str
    generation: int
    size: int
    filename: str


def upload_limit(environ: Mapping[str, str]) -> int:
    problems: list[str] = []
    limit = positive_int(environ, MAX_UPLOAD_BYTES_VARIABLE, DEFAULT_MAX_UPLOAD_BYTES, problems)
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    return limit


def safe_filename(filename: str) -> str:
    """The browser's file name as an object name part: ASCII letters, digits, ``.``, ``-``, ``_``; never empty."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("-", ascii_name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip(".-")
    return cleaned[-MAX_FILENAME_CHARS:].lstrip(".-") or "photo"


def object_name(filename: str, now: datetime, nonce: str | None = None) -> str:
    """``console/<UTC time>-<random>/<file name>``: new for every upload, sorted by time, readable."""
    return f"{PREFIX}/{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{nonce or secrets.token_hex(4)}/{safe_filename(filename)}"


def file_size(stream: IO[bytes]) -> int:
    """The size of a received file (spooled by the form parser: in memory when small, on disk when not)."""
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def check_size(size: int, limit: int) -> None:
    if size == 0:
        raise UploadRefused(400, "The file is empty (0 bytes): choose a photo.")
    if size > limit:
        raise UploadRefused(
            413, f"The file is {_mib(size)} ({size} bytes); photos may be at most {limit_words(limit)}."
        )


def limit_words(limit: int) -> str:
    return f"{_mib(limit)} ({limit} bytes)"


def content_type(sent: str | None) -> str:
    """The browser's word for the file when it says image, else a neutral one: the images service looks at the
    bytes, never at this, but a rendition's viewer should not be told text is a photo."""
    kind = (sent or "").split(";", 1)[0].strip().lower()
    return kind if re.fullmatch(r"image/[a-z0-9.+-]{1,64}", kind) else "application/octet-stream"


def store(storage: Any, bucket: str, name: str, stream: IO[bytes], size: int, kind: str, filename: str) -> StoredUpload:
    """Write the object (streamed from ``stream``), refusing to replace one; return the version written."""
    blob = storage.bucket(bucket).blob(name)
    blob.metadata = {"shop-uploaded-from": "console", "shop-original-filename": filename[:200]}
    blob.upload_from_file(stream, size=size, content_type=kind, if_generation_match=0, rewind=True)
    return StoredUpload(bucket=bucket, name=name, generation=int(blob.generation), size=size, filename=filename)


def upload_fields(upload: StoredUpload, now: datetime) -> dict[str, Any]:
    return {
        "bucket": upload.bucket,
        "name": upload.name,
        "generation": upload.generation,
        "size": upload.size,
        "filename": upload.filename[:200],
        "uploaded_at": now,
    }


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"
