"""The images service's settings, from environment variables, checked once at start-up.

| variable | default | meaning |
| --- | --- | --- |
| ``IMAGE_RENDITIONS`` | ``large:1600,medium:800,thumb:200`` | ``label:longest edge`` pairs |
| ``IMAGE_FORMATS`` | ``jpeg,webp`` | every size is made in each: ``jpeg``, ``webp``, ``avif`` |
| ``IMAGE_JPEG_QUALITY`` | ``85`` | JPEG quality, 1–95 |
| ``IMAGE_WEBP_QUALITY`` | ``79`` | WebP quality, 1–100 |
| ``IMAGE_AVIF_QUALITY`` | ``64`` | AVIF quality, 1–100 |
| ``IMAGE_TRANSPARENT_FORMAT`` | ``webp`` | ``webp`` or ``png``: stands in for JPEG for images with transparency |
| ``IMAGE_MAX_UPLOAD_BYTES`` | ``52428800`` (50 MiB) | larger objects are rejected before download |
| ``IMAGE_MAX_PIXELS`` | ``100000000`` | larger images (by their header) are rejected before decoding |
| ``IMAGE_CACHE_CONTROL`` | ``public, max-age=3600, stale-while-revalidate=86400`` | of every rendition |
| ``IMAGE_THREADS`` | the CPUs the process may use, at most 4 | threads one conversion's resizes and encodes may use |

The settings that decide the renditions (sizes, formats, qualities) have a fingerprint, ``spec``: an image whose
record carries another one is stale, and ``python -m images.backfill`` re-renders it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from eventkit.catalog.images import DEFAULT_MAX_UPLOAD_BYTES, MAX_UPLOAD_BYTES_VARIABLE
from eventkit.errors import ConfigError
from images.cpu_pool import default_threads
from images.renditions import DEFAULT_SPECS, Encoding, OutputFormat, RenditionSpec, spec_fingerprint

_LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FORMAT_NAMES: dict[str, OutputFormat] = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}


@dataclass(frozen=True)
class ImageSettings:
    specs: tuple[RenditionSpec, ...] = DEFAULT_SPECS
    encoding: Encoding = field(default_factory=Encoding)
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES  # the console refuses larger uploads too
    max_pixels: int = 100_000_000
    # Names are stable per source and a re-render replaces the bytes under them: caches revalidate hourly (an
    # ETag answer costs no body) and may serve the old bytes meanwhile for a day (docs/images.md).
    cache_control: str = "public, max-age=3600, stale-while-revalidate=86400"
    threads: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ImageSettings:
        env = os.environ if environ is None else environ
        problems: list[str] = []
        defaults = cls()
        specs = _specs(env.get("IMAGE_RENDITIONS"), problems) if env.get("IMAGE_RENDITIONS") else defaults.specs
        encoding = _encoding(env, defaults.encoding, problems)
        max_bytes = _int(env, MAX_UPLOAD_BYTES_VARIABLE, defaults.max_upload_bytes, 1, 5 * 1024**4, problems)
        max_pixels = _int(env, "IMAGE_MAX_PIXELS", defaults.max_pixels, 1, 2**31, problems)
        cache_control = env.get("IMAGE_CACHE_CONTROL") or defaults.cache_control
        threads = _int(env, "IMAGE_THREADS", default_threads(), 1, 16, problems)
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return cls(
            specs=specs,
            encoding=encoding,
            max_upload_bytes=max_bytes,
            max_pixels=max_pixels,
            cache_control=cache_control,
            threads=threads,
        )

    @property
    def spec(self) -> str:
        """The fingerprint of the renditions these settings make."""
        return spec_fingerprint(self.specs, self.encoding)


def _encoding(env: Mapping[str, str], default: Encoding, problems: list[str]) -> Encoding:
    formats = _formats(env.get("IMAGE_FORMATS"), problems) if env.get("IMAGE_FORMATS") else default.formats
    transparent = (env.get("IMAGE_TRANSPARENT_FORMAT") or "webp").strip().lower()
    if transparent not in ("webp", "png"):
        problems.append(f"IMAGE_TRANSPARENT_FORMAT={transparent!r} must be webp or png")
        transparent = "webp"
    return Encoding(
        formats=formats,
        transparent_format="PNG" if transparent == "png" else "WEBP",
        jpeg_quality=_int(env, "IMAGE_JPEG_QUALITY", default.jpeg_quality, 1, 95, problems),
        webp_quality=_int(env, "IMAGE_WEBP_QUALITY", default.webp_quality, 1, 100, problems),
        avif_quality=_int(env, "IMAGE_AVIF_QUALITY", default.avif_quality, 1, 100, problems),
    )


def _formats(raw: str, problems: list[str]) -> tuple[OutputFormat, ...]:
    formats: list[OutputFormat] = []
    for item in (part.strip().lower() for part in raw.split(",")):
        if item not in FORMAT_NAMES:
            problems.append(f"IMAGE_FORMATS: {item!r} is not one of {', '.join(FORMAT_NAMES)}")
        elif FORMAT_NAMES[item] in formats:
            problems.append(f"IMAGE_FORMATS: {item!r} appears twice")
        else:
            formats.append(FORMAT_NAMES[item])
    return tuple(formats)


def _specs(raw: str, problems: list[str]) -> tuple[RenditionSpec, ...]:
    specs: list[RenditionSpec] = []
    for index, item in enumerate(part.strip() for part in raw.split(",")):
        label, sep, edge = item.partition(":")
        label = label.strip()
        if not sep or not _LABEL.match(label) or not edge.strip().isdigit() or not 1 <= int(edge) <= 10000:
            problems.append(
                f"IMAGE_RENDITIONS[{index}]={item!r} must be label:edge, e.g. large:1600 "
                "(label: lowercase letters, digits, - and _; edge: 1–10000 px)"
            )
            continue
        if any(spec.label == label for spec in specs):
            problems.append(f"IMAGE_RENDITIONS[{index}]: label {label!r} appears twice")
            continue
        specs.append(RenditionSpec(label, int(edge)))
    if not specs and not problems:
        problems.append("IMAGE_RENDITIONS is empty; expected e.g. large:1600,medium:800,thumb:200")
    return tuple(specs)


def _int(env: Mapping[str, str], var: str, default: int, low: int, high: int, problems: list[str]) -> int:
    raw = env.get(var)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{var}={raw!r} must be an integer in {low}..{high}")
        return default
    if not low <= value <= high:
        problems.append(f"{var}={raw!r} must be an integer in {low}..{high}")
        return default
    return value
