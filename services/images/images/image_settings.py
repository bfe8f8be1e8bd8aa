"""The images service's settings, from environment variables, checked once at start-up.

| variable | default | meaning |
| --- | --- | --- |
| ``IMAGE_RENDITIONS`` | ``large:1600,medium:800,thumb:200`` | ``label:longest edge`` pairs |
| ``IMAGE_JPEG_QUALITY`` | ``85`` | JPEG (and lossy WebP) quality, 1–95 |
| ``IMAGE_TRANSPARENT_FORMAT`` | ``webp`` | ``webp`` or ``png`` for images with transparency |
| ``IMAGE_MAX_UPLOAD_BYTES`` | ``52428800`` (50 MiB) | larger objects are rejected before download |
| ``IMAGE_MAX_PIXELS`` | ``100000000`` | larger images (by their header) are rejected before decoding |
| ``IMAGE_CACHE_CONTROL`` | ``public, max-age=86400`` | ``Cache-Control`` of every rendition |
| ``IMAGE_THREADS`` | the CPUs the process may use, at most 4 | threads one conversion's resizes and encodes may use |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from eventkit.errors import ConfigError
from images.cpu_pool import default_threads
from images.renditions import DEFAULT_SPECS, OutputFormat, RenditionSpec

_LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class ImageSettings:
    specs: tuple[RenditionSpec, ...] = DEFAULT_SPECS
    quality: int = 85
    transparent_format: OutputFormat = "WEBP"
    max_upload_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 100_000_000
    cache_control: str = "public, max-age=86400"
    threads: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ImageSettings:
        env = os.environ if environ is None else environ
        problems: list[str] = []
        defaults = cls()
        specs = _specs(env.get("IMAGE_RENDITIONS"), problems) if env.get("IMAGE_RENDITIONS") else defaults.specs
        quality = _int(env, "IMAGE_JPEG_QUALITY", defaults.quality, 1, 95, problems)
        transparent = (env.get("IMAGE_TRANSPARENT_FORMAT") or "webp").strip().lower()
        if transparent not in ("webp", "png"):
            problems.append(f"IMAGE_TRANSPARENT_FORMAT={transparent!r} must be webp or png")
            transparent = "webp"
        max_bytes = _int(env, "IMAGE_MAX_UPLOAD_BYTES", defaults.max_upload_bytes, 1, 5 * 1024**4, problems)
        max_pixels = _int(env, "IMAGE_MAX_PIXELS", defaults.max_pixels, 1, 2**31, problems)
        cache_control = env.get("IMAGE_CACHE_CONTROL") or defaults.cache_control
        threads = _int(env, "IMAGE_THREADS", default_threads(), 1, 16, problems)
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return cls(
            specs=specs,
            quality=quality,
            transparent_format="PNG" if transparent == "png" else "WEBP",
            max_upload_bytes=max_bytes,
            max_pixels=max_pixels,
            cache_control=cache_control,
            threads=threads,
        )


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
