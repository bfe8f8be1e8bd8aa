"""Where the pipeline's time goes: each step of ``imaging.convert`` timed alone, on one thread, for bench/images.py.

The steps are the service's own functions in the pipeline's order — open and check the header, decode (JPEG at
reduced scale, ``draft``), resize to the largest size, each smaller size from the one before it, and each encode —
run one after the other on one thread, so each figure is that step's CPU time with nothing overlapping it.
Not a benchmark by itself (the leading underscore); figures only, never a test.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path


def step_times(path: Path, formats: tuple[str, ...], qualities: dict[str, int], edges: dict[str, int]) -> dict:
    """CPU ms of each step for one photo (one run)."""
    from images.imaging import REDUCING_GAP, encode, exif_orientation, open_checked
    from images.renditions import RenditionSpec, plan_renditions, upright_size
    from images.strip_resize import resize

    specs = tuple(RenditionSpec(label, edge) for label, edge in edges.items())
    times: dict[str, float] = {}

    def timed(name: str, step):
        started = time.process_time()
        result = step()
        times[name] = times.get(name, 0.0) + (time.process_time() - started) * 1000
        return result

    with path.open("rb") as fp:

        def decode():
            source = open_checked(fp, 100_000_000)
            orientation = exif_orientation(source)
            plan = plan_renditions(*upright_size(*source.size, orientation), specs)
            source.draft(None, plan[0].stored_size(orientation))
            source.load()
            return source, plan

        image, plan = timed("decode", decode)
    for index, planned in enumerate(plan):
        size = (planned.width, planned.height)
        image = timed(
            f"resize {planned.label}",
            lambda size=size, image=image: resize(image, size, reducing_gap=REDUCING_GAP, threads=1),
        )
        for fmt in formats:
            timed(f"encode {fmt} {planned.label}", lambda fmt=fmt, image=image: encode(image, fmt, qualities[fmt]))
        del index
    return times


def profile(
    photos: list[Path], formats: tuple[str, ...], qualities: dict[str, int], edges: dict[str, int], repeat: int
) -> dict[str, dict[str, float]]:
    """Per photo, the median CPU ms of each step over ``repeat`` runs (after one warm-up run)."""
    step_times(photos[0], formats, qualities, edges)
    result = {}
    for photo in photos:
        runs = [step_times(photo, formats, qualities, edges) for _ in range(repeat)]
        result[photo.name] = {step: statistics.median(run[step] for run in runs) for step in runs[0]}
    return result


def vips_step_times(path: Path, formats: tuple[str, ...], qualities: dict[str, int], edges: dict[str, int]) -> dict:
    """CPU ms of pyvips' steps for the same set (cascade: the largest from the file, each smaller from the one
    before), each size materialised in memory so that resizing and each save are timed apart."""
    import pyvips

    times: dict[str, float] = {}
    previous = None
    for label, edge in edges.items():
        started = time.process_time()
        if previous is None:
            image = pyvips.Image.thumbnail(str(path), edge, height=edge, size="down").copy_memory()
            name = f"decode + resize {label}"
        else:
            image = previous.thumbnail_image(edge, height=edge, size="down").copy_memory()
            name = f"resize {label}"
        times[name] = (time.process_time() - started) * 1000
        for fmt in formats:
            started = time.process_time()
            if fmt == "JPEG":
                image.jpegsave_buffer(
                    Q=qualities[fmt], optimize_coding=True, interlace=True, strip=True, subsample_mode="on"
                )
            else:
                image.webpsave_buffer(Q=qualities[fmt], effort=4, strip=True)
            times[f"encode {fmt} {label}"] = (time.process_time() - started) * 1000
        previous = image
    return times


def vips_profile(
    photos: list[Path], formats: tuple[str, ...], qualities: dict[str, int], edges: dict[str, int], repeat: int
) -> dict[str, dict[str, float]]:
    vips_step_times(photos[0], formats, qualities, edges)
    result = {}
    for photo in photos:
        runs = [vips_step_times(photo, formats, qualities, edges) for _ in range(repeat)]
        result[photo.name] = {step: statistics.median(run[step] for run in runs) for step in runs[0]}
    return result
