"""LANCZOS resizing split into horizontal strips across threads: Pillow's pixels, in a fraction of the wall time.

Pillow releases the GIL while it resamples, so strips of one image can resize on separate CPUs (the images service
runs with 2 vCPUs; ImageMagick and libvips use every CPU the same way). Each strip repeats what one
``Image.resize`` does for the whole image, in the same order — an optional integer ``reduce()`` first (Pillow's
``reducing_gap``), then the horizontal pass, then the vertical pass — over just the source rows that its output
rows read, so a strip's rows match the single call's rows (to ±1 of 255 where floating-point rounding of the
filter weights differs; the unit tests check it).

Only modes Pillow resamples directly (L, RGB, CMYK) are split; anything else, and any image too small to be worth
a thread, takes the single call.
"""

from __future__ import annotations

import math

from PIL import Image

from images.cpu_pool import pool

LANCZOS = Image.Resampling.LANCZOS
LANCZOS_SUPPORT = 3.0
# Below this many output pixels a thread hand-off costs about what it saves (docs/performance.md).
MIN_SPLIT_PIXELS = 250_000
SPLIT_MODES = ("L", "RGB", "CMYK")


def resize(image: Image.Image, size: tuple[int, int], *, reducing_gap: float | None, threads: int) -> Image.Image:
    """``image.resize(size, LANCZOS, reducing_gap=reducing_gap)``, computed in up to ``threads`` strips."""
    if image.size == size:
        return image
    strips = min(threads, size[1])
    if strips < 2 or image.mode not in SPLIT_MODES or size[0] * size[1] < MIN_SPLIT_PIXELS:
        return image.resize(size, LANCZOS, reducing_gap=reducing_gap)
    source, box = _reduced(image, size, reducing_gap)
    bounds = [round(size[1] * i / strips) for i in range(strips + 1)]
    later = [pool(threads).submit(_strip, source, box, size, bounds[i], bounds[i + 1]) for i in range(1, strips)]
    parts = [_strip(source, box, size, bounds[0], bounds[1])] + [future.result() for future in later]
    out = Image.new(image.mode, size)
    for top, part in zip(bounds, parts, strict=False):
        out.paste(part, (0, top))
    return out


def _reduced(
    image: Image.Image, size: tuple[int, int], reducing_gap: float | None
) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """Pillow's own ``reducing_gap`` step for a whole-image box: an integer box reduce, and the box left after it."""
    width, height = image.size
    if reducing_gap is None:
        return image, (0.0, 0.0, float(width), float(height))
    factor_x = int(width / size[0] / reducing_gap) or 1
    factor_y = int(height / size[1] / reducing_gap) or 1
    if factor_x == 1 and factor_y == 1:
        return image, (0.0, 0.0, float(width), float(height))
    return image.reduce((factor_x, factor_y)), (0.0, 0.0, width / factor_x, height / factor_y)


def _strip(
    source: Image.Image, box: tuple[float, float, float, float], size: tuple[int, int], top: int, bottom: int
) -> Image.Image:
    """Output rows ``top``..``bottom``: the horizontal pass over the source rows they read, then the vertical pass."""
    width, rows = size[0], bottom - top
    scale_y = (box[3] - box[1]) / size[1]
    support = LANCZOS_SUPPORT * max(scale_y, 1.0)
    # Every source row any of these output rows' filter windows reaches (plus one for rounding), so that the
    # windows are clipped only where the whole image ends, exactly as in the single call.
    first = max(0, math.floor(box[1] + top * scale_y - support) - 1)
    last = min(source.height, math.ceil(box[1] + bottom * scale_y + support) + 1)
    band = source.crop((0, first, source.width, last))
    if (width, box[0], box[2]) != (source.width, 0.0, float(source.width)):
        band = band.resize((width, band.height), LANCZOS, box=(box[0], 0, box[2], band.height))
    y0, y1 = box[1] + top * scale_y - first, box[1] + bottom * scale_y - first
    return band.resize((width, rows), LANCZOS, box=(0, y0, width, y1))
