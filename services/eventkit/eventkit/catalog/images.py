"""Image events: the images service announces what it made of each upload on the ``image-events`` topic.

One event per source object version (bucket, name, generation) and rendition fingerprint (``spec``):
``ImageProcessed`` with every variant it wrote (each size in each format), or ``ImageRejected`` with the reason
the upload can never be converted. A version re-rendered under new settings is announced again, with the new
``spec`` and a new event id.
"""

# No `from __future__ import annotations` here: pydantic would then evaluate every field annotation from its
# string at class creation, at import (docs/performance.md); the catalog's types need no postponement.

from typing import Literal

from pydantic import Field

from eventkit.catalog._base import Payload

IMAGE_PROCESSED = "shop.image.processed.v1"
IMAGE_REJECTED = "shop.image.rejected.v1"

# The largest upload, one setting for both sides of the bucket: the images service rejects a larger object as
# ``too_large`` (judged from its metadata), and the console refuses it before storing it.
MAX_UPLOAD_BYTES_VARIABLE = "IMAGE_MAX_UPLOAD_BYTES"
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024

RejectionReason = Literal[
    "empty",  # a zero-byte object
    "too_large",  # over the size limit, judged from the object metadata before download
    "too_many_pixels",  # over the pixel limit, judged from the image header before decoding (bombs)
    "not_an_image",  # no image format recognised (e.g. a text file named .jpg)
    "unsupported_format",  # an image, but not one of the accepted formats
    "truncated",  # the data ends before the image does
    "corrupt",  # the decoder failed on the data
]


RenditionFormat = Literal["jpeg", "webp", "avif", "png"]


class Rendition(Payload):
    label: str = Field(min_length=1, max_length=64)
    format: RenditionFormat | None = Field(default=None, description="absent in events made before formats")
    bucket: str = Field(min_length=1)
    name: str = Field(min_length=1)
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    size: int = Field(ge=0, description="bytes")
    content_type: str = Field(min_length=1)


class ImageProcessed(Payload):
    bucket: str = Field(min_length=1)
    name: str = Field(min_length=1)
    generation: int = Field(ge=0)
    format: str = Field(min_length=1, description="source format as Pillow names it: JPEG, PNG, HEIF ...")
    width: int = Field(ge=1, description="source width, upright (after EXIF orientation)")
    height: int = Field(ge=1, description="source height, upright")
    renditions: list[Rendition] = Field(min_length=1)
    spec: str | None = Field(default=None, description="fingerprint of the rendition settings that made them")


class ImageRejected(Payload):
    bucket: str = Field(min_length=1)
    name: str = Field(min_length=1)
    generation: int = Field(ge=0)
    reason: RejectionReason
    detail: str = Field(default="", max_length=2000)


MODELS: dict[str, type[Payload]] = {
    IMAGE_PROCESSED: ImageProcessed,
    IMAGE_REJECTED: ImageRejected,
}
