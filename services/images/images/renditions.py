"""Which renditions an image gets, how big, in which format and under which name: pure decisions, no I/O.

Sizes are "longest edge" boxes (default 1600, 800 and 200 px) and never upscale: a source smaller than a box
keeps its own size. Sizes are planned in the *upright* frame (after EXIF orientation); the longest edge is the
same in both frames, so only width and height swap for orientations 5–8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

OutputFormat = Literal["JPEG", "WEBP", "PNG"]

EXTENSIONS: dict[OutputFormat, str] = {"JPEG": "jpg", "WEBP": "webp", "PNG": "png"}
CONTENT_TYPES: dict[OutputFormat, str] = {"JPEG": "image/jpeg", "WEBP": "image/webp", "PNG": "image/png"}

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


def output_format(has_transparency: bool, transparent_format: OutputFormat = "WEBP") -> OutputFormat:
    """Opaque images become (progressive) JPEG; images with any transparent pixel keep it in WebP or PNG."""
    return transparent_format if has_transparency else "JPEG"


def rendition_name(source_name: str, label: str, fmt: OutputFormat) -> str:
    """Deterministic output name: ``<source name>/<label>.<ext>`` (a redelivery computes the same name)."""
    return f"{source_name}/{label}.{EXTENSIONS[fmt]}"


def source_uri(bucket: str, name: str, generation: int) -> str:
    """``gs://bucket/name#generation``, percent-encoding what would make it ambiguous."""
    return f"gs://{bucket}/{quote(name, safe='/')}#{generation}"
