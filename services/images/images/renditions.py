"""Which renditions an image gets, how big, in which formats and under which names: pure decisions, no I/O.

Sizes are "longest edge" boxes (default 1600, 800 and 200 px) and never upscale: a source smaller than a box
keeps its own size. Sizes are planned in the *upright* frame (after EXIF orientation); the longest edge is the
same in both frames, so only width and height swap for orientations 5–8.

Every size is made in each configured format (default JPEG and WebP; AVIF on request), so a page can offer the
smallest one a browser accepts in ``<picture>``. JPEG cannot hold transparency: for an image with transparent
pixels it is replaced by the transparent fallback (WebP or PNG).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

OutputFormat = Literal["JPEG", "WEBP", "AVIF", "PNG"]

EXTENSIONS: dict[OutputFormat, str] = {"JPEG": "jpg", "WEBP": "webp", "AVIF": "avif", "PNG": "png"}
CONTENT_TYPES: dict[OutputFormat, str] = {
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
    "PNG": "image/png",
}
# Formats that keep an alpha channel; JPEG does not.
ALPHA_FORMATS: frozenset[OutputFormat] = frozenset({"WEBP", "AVIF", "PNG"})
DEFAULT_FORMATS: tuple[OutputFormat, ...] = ("JPEG", "WEBP")

# Raise when the pipeline's output changes under the same settings (a new resampler, another encoder setting):
# every image's fingerprint then changes, and the backfill re-renders them all.
PIPELINE_VERSION = 1

# EXIF Orientation values whose stored pixels are turned a quarter (width and height swap when made upright).
QUARTER_TURNS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class RenditionSpec:
    """One configured rendition: a label (part of the output name) and a longest-edge box in pixels."""

    label: str
    longest_edge: int


DEFAULT_SPECS: tuple[RenditionSpec, ...] = (
    RenditionSpec("large", 1600),
    RenditionSpec("medium", 800),
    RenditionSpec("thumb", 200),
)


@dataclass(frozen=True)
class Encoding:
    """The formats every size is encoded in, and each format's quality. The defaults are set to look alike: WebP
    and AVIF at the SSIM of JPEG quality 85 on the benchmark photos (docs/images.md)."""

    formats: tuple[OutputFormat, ...] = DEFAULT_FORMATS
    transparent_format: OutputFormat = "WEBP"
    jpeg_quality: int = 85
    webp_quality: int = 79
    avif_quality: int = 64

    def quality(self, fmt: OutputFormat) -> int:
        return {"JPEG": self.jpeg_quality, "WEBP": self.webp_quality, "AVIF": self.avif_quality}.get(fmt, 0)


@dataclass(frozen=True)
class PlannedRendition:
    label: str
    width: int  # upright
    height: int

    def stored_size(self, orientation: int) -> tuple[int, int]:
        """This rendition's size in the source's stored (not yet rotated) frame."""
        return (self.height, self.width) if orientation in QUARTER_TURNS else (self.width, self.height)


def upright_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """The size of stored pixels ``width`` × ``height`` once EXIF ``orientation`` is applied."""
    return (height, width) if orientation in QUARTER_TURNS else (width, height)


def plan_renditions(width: int, height: int, specs: tuple[RenditionSpec, ...]) -> list[PlannedRendition]:
    """Renditions of an upright ``width`` × ``height`` image, largest first (each is made from the previous)."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be at least 1×1, got {width}×{height}")
    longest = max(width, height)
    planned = []
    for spec in sorted(specs, key=lambda s: s.longest_edge, reverse=True):
        edge = min(spec.longest_edge, longest)  # never upscale
        scale = edge / longest
        planned.append(PlannedRendition(spec.label, max(1, round(width * scale)), max(1, round(height * scale))))
    return planned


def output_formats(
    has_transparency: bool,
    formats: tuple[OutputFormat, ...] = DEFAULT_FORMATS,
    transparent_format: OutputFormat = "WEBP",
) -> tuple[OutputFormat, ...]:
    """The formats one image is encoded in, in the configured order: an image with any transparent pixel gets
    ``transparent_format`` in place of JPEG (once, if it is listed already)."""
    if not has_transparency:
        return formats
    chosen: list[OutputFormat] = []
    for fmt in formats:
        keeps_alpha = fmt if fmt in ALPHA_FORMATS else transparent_format
        if keeps_alpha not in chosen:
            chosen.append(keeps_alpha)
    return tuple(chosen)


def rendition_name(source_name: str, label: str, fmt: OutputFormat) -> str:
    """Deterministic output name: ``<source name>/<label>.<ext>`` (a redelivery computes the same name)."""
    return f"{source_name}/{label}.{EXTENSIONS[fmt]}"


def source_uri(bucket: str, name: str, generation: int) -> str:
    """``gs://bucket/name#generation``, percent-encoding what would make it ambiguous."""
    return f"gs://{bucket}/{quote(name, safe='/')}#{generation}"


def spec_fingerprint(specs: tuple[RenditionSpec, ...], encoding: Encoding) -> str:
    """A short stable id of everything that decides the renditions' pixels, names and bytes. Settings that do not
    (limits, threads, Cache-Control) are left out, as is the quality of a format that is not made."""
    made = set(encoding.formats) | ({encoding.transparent_format} - {"JPEG"})
    canonical = {
        "pipeline": PIPELINE_VERSION,
        "sizes": sorted([spec.label, spec.longest_edge] for spec in specs),
        "formats": list(encoding.formats),
        "transparent": encoding.transparent_format,
        "quality": {fmt: encoding.quality(fmt) for fmt in sorted(made) if encoding.quality(fmt)},
    }
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return digest[:16]
