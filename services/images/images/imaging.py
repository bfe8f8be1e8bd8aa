"""The Pillow pipeline: one source image in, encoded renditions out, safely and fast.

1. **Open** reads only the header, restricted to the accepted formats (no plugin that shells out, e.g. EPS):
   the pixel limit is checked *before* any decoding, so a decompression bomb costs a header read.
2. **Decode** JPEGs at reduced scale (libjpeg DCT scaling via ``draft``) to no less than the largest rendition,
   so a 24 MP photo decodes as 6 MP.
3. **Largest rendition**: ``reduce()`` by an integer factor then LANCZOS (``reducing_gap``), in the stored
   frame; *then* the EXIF orientation is applied and the embedded ICC profile converted to sRGB — both on the
   small image, never on a full-size copy.
4. **Smaller renditions** are each made from the previous one. Large resizes run in strips on ``threads`` CPUs
   (strip_resize.py: Pillow releases the GIL while it resamples).
5. **Encode** each size in every configured format (default JPEG and WebP; AVIF on request) with no metadata at
   all (no EXIF, GPS, XMP, ICC, comments); for images with transparent pixels, WebP or PNG stands in for JPEG.
   One decode and one resize per size serve every format.

Every way the data can fail to decode becomes an :class:`ImageRejectedError` with a reason.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import IO, TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from images.cpu_pool import default_threads, pool
from images.malloc_tuning import retain_freed_memory
from images.rejections import ImageRejectedError
from images.renditions import (
    CONTENT_TYPES,
    Encoding,
    OutputFormat,
    PlannedRendition,
    RenditionSpec,
    output_formats,
    plan_renditions,
    upright_size,
)
from images.strip_resize import resize

if TYPE_CHECKING:
    from PIL import ImageCms

retain_freed_memory()  # no page fault storm per conversion (malloc_tuning.py)

# Pillow's names for the accepted inputs. The JPEG plugin also opens JPEGs with a multi-picture extension, as
# many cameras write them (Pillow then says "MPO"). Pillow loads its other plugins itself on the first open that
# names one (WEBP, TIFF) or that its common ones do not recognise.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "HEIF")
_ACCEPTED_BUT_HEIF = tuple(name for name in ACCEPTED_FORMATS if name != "HEIF")
_heif_lock = threading.Lock()
_heif_registered = threading.Event()
JPEG_FORMATS = ("JPEG", "MPO")
# reduce() by an integer factor while the remaining scale is at least this, then LANCZOS: Pillow's documented
# speed/quality trade-off (2.0 is indistinguishable from a plain LANCZOS at these sizes, and far faster).
REDUCING_GAP = 2.0
ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# AVIF's encoder speed (0 slowest .. 10): 8 costs about 11× the CPU of a JPEG of the same size, 7 about 20×;
# 9 needs a higher quality for the same SSIM and ends larger than WebP (docs/images.md). One thread per encode:
# the service's own pool runs encodes side by side.
AVIF_SPEED = 8
# What a decoder may raise on bad data (Pillow, libjpeg, zlib, libheif).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error)


@dataclass(frozen=True)
class EncodedRendition:
    label: str
    width: int
    height: int
    format: OutputFormat
    data: bytes

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


@dataclass(frozen=True)
class Converted:
    source_format: str
    width: int  # upright
    height: int
    renditions: list[EncodedRendition]


def convert(
    fp: IO[bytes],
    specs: tuple[RenditionSpec, ...],
    *,
    encoding: Encoding = Encoding(),  # noqa: B008 — frozen, shared safely
    max_pixels: int = 100_000_000,
    threads: int | None = None,
) -> Converted:
    """Every rendition of the image in ``fp`` (a seekable binary file), each size in every format of
    ``encoding``, largest size first; raises ImageRejectedError on bad input.

    ``threads``: CPUs a large resize may use (default: those this process may run on, at most 4).
    """
    source = open_checked(fp, max_pixels)
    stored_size, source_format = source.size, source.format or "unknown"
    if source_format in JPEG_FORMATS:
        # A JPEG's EXIF is in its header: plan now, and decode at the smallest scale ≥ the largest rendition.
        orientation = exif_orientation(source)
        largest = plan_renditions(*upright_size(*stored_size, orientation), specs)[0]
        source.draft(None, largest.stored_size(orientation))
    decoded = _decode(source)
    # Other formats may keep EXIF after the pixels (PNG eXIf), so read it only once they are decoded.
    orientation = exif_orientation(source)
    width, height = upright_size(*stored_size, orientation)
    plan = plan_renditions(width, height, specs)
    del source
    workers = default_threads() if threads is None else threads
    renditions = _render(decoded, orientation, plan, encoding, workers)
    return Converted(source_format, width, height, renditions)


def open_checked(fp: IO[bytes], max_pixels: int) -> Image.Image:
    """Open (header only) and check format and pixel count before anything is decoded."""
    head = fp.read(16)
    if not head:
        raise ImageRejectedError("empty", "the object is empty (0 bytes)")
    fp.seek(0)
    try:
        with warnings.catch_warnings():  # the pixel limit is checked below, with this service's own limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(fp, formats=_accepted_formats(head))
    except Image.DecompressionBombError as exc:
        raise ImageRejectedError("too_many_pixels", str(exc)) from None
    except UnidentifiedImageError:
        fp.seek(0)
        try:
            Image.open(fp)  # recognised by some other plugin?
        except Exception:
            raise ImageRejectedError("not_an_image", "not an image in any format Pillow knows") from None
        raise ImageRejectedError(
            "unsupported_format", f"not one of the accepted formats ({', '.join(ACCEPTED_FORMATS)})"
        ) from None
    except _DECODE_ERRORS as exc:
        raise ImageRejectedError("corrupt", f"unreadable image header: {exc}") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRejectedError("corrupt", f"the header declares a {width}×{height} image")
    if width * height > max_pixels:
        raise ImageRejectedError(
            "too_many_pixels",
            f"{image.format} header declares {width}×{height} = {width * height} pixels; the limit is {max_pixels}",
        )
    return image


def _accepted_formats(head: bytes) -> tuple[str, ...]:
    """The formats to try on a file starting with ``head``. pillow-heif's plugin loads libheif and its codecs,
    which takes time: only the first file that may be HEIF pays for it, so an instance that only sees JPEG and PNG
    never does, and the service is ready sooner."""
    # HEIC/HEIF (as iPhones upload them) are ISO base media files: their "ftyp" box starts at byte 4.
    if head[4:8] == b"ftyp" and not _heif_registered.is_set():
        with _heif_lock:
            if not _heif_registered.is_set():
                import pillow_heif

                pillow_heif.register_heif_opener()
                _heif_registered.set()
    return ACCEPTED_FORMATS if _heif_registered.is_set() else _ACCEPTED_BUT_HEIF


def exif_orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # unreadable EXIF is no reason to refuse the pixels
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _decode(source: Image.Image) -> Image.Image:
    try:
        source.load()
        return _working_mode(source)
    except Image.DecompressionBombError as exc:
        raise ImageRejectedError("too_many_pixels", str(exc)) from None
    except _DECODE_ERRORS as exc:
        reason = "truncated" if "truncated" in str(exc) else "corrupt"
        raise ImageRejectedError(reason, f"{source.format} data could not be decoded: {exc}") from None


def _render(
    decoded: Image.Image, orientation: int, plan: list[PlannedRendition], encoding: Encoding, threads: int
) -> list[EncodedRendition]:
    icc = decoded.info.get("icc_profile")
    image = resize(decoded, plan[0].stored_size(orientation), reducing_gap=REDUCING_GAP, threads=threads)
    del decoded  # only the largest rendition is kept from here on
    if orientation in _TRANSPOSE:
        image = image.transpose(_TRANSPOSE[orientation])
    image = _to_srgb(image, icc)
    image.info = {}  # no metadata (EXIF, XMP, ICC, comments) reaches any rendition
    transparent = _has_transparency(image)
    formats = output_formats(transparent, encoding.formats, encoding.transparent_format)
    if not transparent and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")  # an opaque alpha channel costs bytes in every format
    # Each size is encoded on pool threads while the next, smaller one is resized from it on the other CPUs.
    jobs = []
    for index, planned in enumerate(plan):
        if index:
            size = (planned.width, planned.height)
            image = resize(image, size, reducing_gap=REDUCING_GAP, threads=max(1, threads - 1))
        for n, fmt in enumerate(formats):
            # Image.save keeps its options on the image object: two formats saved at once from one object would
            # mix them, so each format past the first encodes its own copy (about 1 ms for 1600 × 1200).
            source = image.copy() if n and threads > 1 else image
            quality = encoding.quality(fmt)
            job = pool(threads).submit(encode, source, fmt, quality) if threads > 1 else None
            jobs.append((planned.label, source, fmt, quality, job))
    return [
        EncodedRendition(label, image.width, image.height, fmt, job.result() if job else encode(image, fmt, quality))
        for label, image, fmt, quality, job in jobs
    ]


def _working_mode(image: Image.Image) -> Image.Image:
    """A mode that resizes well and keeps what matters: L, RGB, RGBA, or CMYK (converted with its profile)."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "CMYK"):
        return image
    if mode in ("P", "PA"):
        return image.convert("RGBA" if "transparency" in image.info or mode == "PA" else "RGB")
    if mode in ("LA", "La", "RGBa"):
        return image.convert("RGBA")
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit and float greys: scale to 8 bits (0–65535 → 0–255) rather than clip.
        return image.convert("I").point(lambda v: v / 256).convert("L")
    return image.convert("RGB")


def _has_transparency(image: Image.Image) -> bool:
    if image.mode not in ("RGBA", "LA"):
        return False
    low, _ = image.getchannel("A").getextrema()
    return low < 255


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert from the embedded ICC profile to sRGB; without a usable profile, assume the pixels are sRGB."""
    if icc:
        # LittleCMS is loaded by the first image that carries a profile, not by every cold start.
        from PIL import ImageCms

        out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        try:
            transform = _transform(icc, image.mode, out_mode)
            return ImageCms.applyTransform(image, transform) or image
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken or mismatched profile: fall through
    if image.mode in ("RGB", "RGBA", "L"):
        return image
    return image.convert("RGB")


@lru_cache(maxsize=32)
def _transform(icc: bytes, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform:
    """Building a transform costs milliseconds; the same camera's profile repeats, so keep a few."""
    from PIL import ImageCms

    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.buildTransform(source, _srgb(), in_mode, out_mode, renderingIntent=ImageCms.Intent.PERCEPTUAL)


@lru_cache(maxsize=1)
def _srgb() -> ImageCms.core.CmsProfile:
    from PIL import ImageCms

    return ImageCms.createProfile("sRGB")


def encode(image: Image.Image, fmt: OutputFormat, quality: int) -> bytes:
    """Encode with no metadata: the caller empties ``info``, and no EXIF, XMP or ICC argument is passed.

    Pillow holds the GIL while it encodes into a Python buffer but not while it writes to a file descriptor, so
    the encoder writes to an anonymous in-memory file where the OS has them (Linux); elsewhere to a buffer.
    """
    with _scratch_file() as out:
        if fmt == "JPEG":
            image.save(out, "JPEG", quality=quality, progressive=True, optimize=True, subsampling="4:2:0")
        elif fmt == "WEBP":
            image.save(out, "WEBP", quality=quality, method=4)
        elif fmt == "AVIF":
            image.save(out, "AVIF", quality=quality, speed=AVIF_SPEED, max_threads=1)
        else:
            image.save(out, "PNG", optimize=False, compress_level=6)
        out.seek(0)
        return out.read()


def _scratch_file() -> IO[bytes]:
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("rendition", os.MFD_CLOEXEC), "w+b")
    return io.BytesIO()
