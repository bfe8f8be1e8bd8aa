"""Which WebP and AVIF quality looks the same as JPEG q85, and what each format costs: bench/images.py's study.

"Looks the same" is judged by SSIM (scikit-image's ``structural_similarity``, Wang et al.'s Gaussian window, σ 1.5,
over the R, G and B channels) of each decoded rendition against the uncompressed resized image it was encoded
from. Every encode goes through the service's own ``imaging.encode`` (its JPEG, WebP and AVIF settings), and every
resized image through its ``strip_resize.resize`` (reduce + LANCZOS), so the study measures what the service writes.

Photos of three kinds, because SSIM and the codecs both depend on content:

- ``bench``: the timing photos (gradients + noise + a Mandelbrot set; noisy, hard to compress);
- ``dead leaves``: occluding discs of power-law sizes, blurred a little and with sensor-like noise — the model of
  natural-image statistics that camera texture charts use (ISO 19567-2), edges at every scale;
- ``photo``: real photographs that scikit-image ships (astronaut, cat, coffee, rocket, motorcycle; 451–741 px wide),
  rendered at their own size and at the thumbnail size (renditions never upscale).

Not a benchmark by itself (the leading underscore); figures only, never a test.
"""

from __future__ import annotations

import io
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

# Installed on demand, at this version (the bench's figures depend on it): benchmark-only, and with numpy and scipy
# ~100 MB that neither the service nor the test suite needs.
SCIKIT_IMAGE = "scikit-image==0.26.0"
REAL_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")
REFERENCE = ("JPEG", 85)
GRIDS = {"WEBP": range(50, 100, 5), "AVIF": range(30, 100, 10)}


def ensure_scikit_image() -> None:
    try:
        import skimage  # noqa: F401
    except ImportError:
        print(f"installing {SCIKIT_IMAGE} with pip", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", SCIKIT_IMAGE], check=True)


# --- the photos -------------------------------------------------------------------------------------------------


def dead_leaves(width: int, height: int, seed: int = 11) -> Image.Image:
    """Occluding discs whose radii follow a 1/r³ law (the dead-leaves model), then lens blur and sensor noise."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    r_min, r_max = 3.0, max(width, height) / 6
    for _ in range(int(width * height / 180)):
        # Inverse-CDF sampling of p(r) ∝ r⁻³ on [r_min, r_max].
        u = rng.random()
        r = (r_min**-2 - u * (r_min**-2 - r_max**-2)) ** -0.5
        x, y = rng.uniform(-r, width + r), rng.uniform(-r, height + r)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(20, 236) for _ in range(3)))
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    noise = Image.effect_noise((width, height), 10).convert("RGB")
    return Image.blend(image, noise, 0.08)


def make_dead_leaves_jpeg(path: Path, width: int, height: int) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        dead_leaves(width, height).save(path, "JPEG", quality=92)
    return path


def real_photos() -> list[Path]:
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    return [folder / name for name in REAL_PHOTOS if (folder / name).exists()]


@dataclass(frozen=True)
class Source:
    kind: str
    path: Path


@dataclass
class Rendition:
    """One resized image, uncompressed, and its pixels as the SSIM reference."""

    kind: str
    name: str
    edge: int
    image: Image.Image
    pixels: object = field(repr=False)  # numpy array

    @property
    def group(self) -> str:
        """The rendition size it stands for: its edge, or "own size" for a photo smaller than the box."""
        return str(self.edge) if max(self.image.size) == self.edge else "own size"


def renditions(sources: Iterable[Source], edges: Iterable[int]) -> list[Rendition]:
    """Each source decoded once and resized to every edge (never upscaled), each size from the one before it,
    as the pipeline resizes."""
    import numpy as np

    from images.imaging import REDUCING_GAP
    from images.strip_resize import resize

    made = []
    for source in sources:
        with Image.open(source.path) as opened:
            image = opened.convert("RGB")
        current, seen = image, set()
        for edge in sorted(edges, reverse=True):
            scale = min(1.0, edge / max(image.size))
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            if size in seen:
                continue
            seen.add(size)
            current = resize(current, size, reducing_gap=REDUCING_GAP, threads=1)
            made.append(Rendition(source.kind, source.path.name, edge, current, np.asarray(current)))
    return made


# --- encoding and judging ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    cpu_ms: float  # median over the repeats
    size: int
    ssim: float


def measure(rendition: Rendition, fmt: str, quality: int, encode: Callable, repeat: int) -> Measured:
    import numpy as np
    from skimage.metrics import structural_similarity

    cpu, data = [], b""
    for _ in range(repeat):
        started = time.process_time()
        data = encode(rendition.image, fmt, quality)
        cpu.append((time.process_time() - started) * 1000)
    with Image.open(io.BytesIO(data)) as decoded:
        pixels = np.asarray(decoded.convert("RGB"))
    score = structural_similarity(
        rendition.pixels,
        pixels,
        channel_axis=2,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    return Measured(statistics.median(cpu), len(data), float(score))


class Study:
    """Measurements of (format, quality) over every rendition, cached: the search asks for some twice."""

    def __init__(self, made: list[Rendition], encode: Callable, repeat: int) -> None:
        self.renditions, self.encode, self.repeat = made, encode, repeat
        self.results: dict[tuple[str, int], list[Measured]] = {}

    def at(self, fmt: str, quality: int) -> list[Measured]:
        key = (fmt, quality)
        if key not in self.results:
            self.results[key] = [measure(r, fmt, quality, self.encode, self.repeat) for r in self.renditions]
        return self.results[key]

    def mean_ssim(self, fmt: str, quality: int, keep: Callable[[Rendition], bool] = lambda r: True) -> float:
        return statistics.fmean(m.ssim for r, m in zip(self.renditions, self.at(fmt, quality), strict=True) if keep(r))

    def lowest_matching(self, fmt: str) -> int | None:
        """The lowest quality whose mean SSIM over every rendition is ≥ JPEG q85's: the grid, then each integer
        below the first grid point that passes (SSIM rises with quality; the grid shows it does here)."""
        target = self.mean_ssim(*REFERENCE)
        passing = [q for q in GRIDS[fmt] if self.mean_ssim(fmt, q) >= target]
        if not passing:
            return None
        best = passing[0]
        for quality in range(best - 1, max(0, best - GRIDS[fmt].step), -1):
            if self.mean_ssim(fmt, quality) < target:
                break
            best = quality
        return best


def run_study(
    sources: list[Source], edges: Iterable[int], encode: Callable, repeat: int
) -> tuple[Study, dict[str, int | None]]:
    """The grid of every format over every rendition, and the quality of each format that matches JPEG q85."""
    study = Study(renditions(sources, edges), encode, repeat)
    study.at(*REFERENCE)
    for fmt, grid in GRIDS.items():
        for quality in grid:
            study.at(fmt, quality)
    return study, {fmt: study.lowest_matching(fmt) for fmt in GRIDS}


# --- reporting --------------------------------------------------------------------------------------------------


def _mean(values: Iterable[float]) -> float:
    return statistics.fmean(values)


def summarise(study: Study, chosen: dict[str, int | None]) -> dict:
    """Per (format, quality) and rendition edge: mean CPU ms per encode, mean bytes, mean SSIM; and the choice."""
    groups = list(dict.fromkeys(r.group for r in sorted(study.renditions, key=lambda r: -max(r.image.size))))
    kinds = sorted({r.kind for r in study.renditions})
    rows = []
    for (fmt, quality), measured in sorted(study.results.items()):
        for group in groups:
            pairs = [(r, m) for r, m in zip(study.renditions, measured, strict=True) if r.group == group]
            rows.append(
                {
                    "format": fmt,
                    "quality": quality,
                    "size": group,
                    "renditions": len(pairs),
                    "cpu_ms": _mean(m.cpu_ms for _, m in pairs),
                    "bytes": _mean(m.size for _, m in pairs),
                    "ssim": _mean(m.ssim for _, m in pairs),
                    "ssim_by_kind": {
                        kind: _mean(m.ssim for r, m in pairs if r.kind == kind)
                        for kind in kinds
                        if any(r.kind == kind for r, _ in pairs)
                    },
                }
            )
    reference = study.at(*REFERENCE)
    choices = {}
    for fmt, quality in chosen.items():
        if quality is None:
            choices[fmt] = None
            continue
        measured = study.at(fmt, quality)
        choices[fmt] = {
            "quality": quality,
            "ssim": study.mean_ssim(fmt, quality),
            # Sums over the same renditions: what a set of them weighs and costs, against the same set in JPEG.
            "bytes_vs_jpeg": sum(m.size for m in measured) / sum(m.size for m in reference),
            "cpu_vs_jpeg": sum(m.cpu_ms for m in measured) / sum(m.cpu_ms for m in reference),
            "by_kind": {kind: _lowest_for(study, fmt, lambda r, kind=kind: r.kind == kind) for kind in kinds},
            "bytes_vs_jpeg_by_kind": {
                kind: sum(m.size for r, m in zip(study.renditions, measured, strict=True) if r.kind == kind)
                / sum(m.size for r, m in zip(study.renditions, reference, strict=True) if r.kind == kind)
                for kind in kinds
            },
        }
    return {
        "metric": "SSIM (scikit-image structural_similarity, Gaussian σ 1.5, RGB) against the uncompressed resize",
        "renditions": [
            {"kind": r.kind, "photo": r.name, "size": r.group, "pixels": r.image.size} for r in study.renditions
        ],
        "reference": {"format": REFERENCE[0], "quality": REFERENCE[1], "ssim": study.mean_ssim(*REFERENCE)},
        "rows": rows,
        "chosen": choices,
    }


def _lowest_for(study: Study, fmt: str, keep: Callable[[Rendition], bool]) -> int | None:
    """The lowest *measured* quality matching JPEG q85 on one kind of photo (no extra encodes: a guide only)."""
    target = study.mean_ssim(*REFERENCE, keep=keep)
    measured = sorted(q for f, q in study.results if f == fmt)
    return next((q for q in measured if study.mean_ssim(fmt, q, keep) >= target), None)


def print_summary(summary: dict) -> None:
    print("\nper format on the same resized images (mean per encode; SSIM against the uncompressed resize):")
    print("| format | quality | size | CPU ms / encode | KB | SSIM | SSIM by kind |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in summary["rows"]:
        kinds = ", ".join(f"{k} {v:.4f}" for k, v in row["ssim_by_kind"].items())
        print(
            f"| {row['format']} | {row['quality']} | {row['size']} | {row['cpu_ms']:.1f} | {row['bytes'] / 1024:.1f} "
            f"| {row['ssim']:.4f} | {kinds} |"
        )
    reference = summary["reference"]
    count = len(summary["renditions"])
    print(f"\nJPEG q{reference['quality']}: mean SSIM {reference['ssim']:.4f} over {count} renditions")
    print(
        "| format | quality that looks the same | mean SSIM | bytes vs JPEG q85 | encode CPU vs JPEG q85 "
        "| by kind: lowest measured quality that matches; bytes at the chosen quality |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for fmt, choice in summary["chosen"].items():
        if choice is None:
            print(f"| {fmt} | none of the grid reaches JPEG q85's SSIM | | | | |")
            continue
        kinds = ", ".join(
            f"{k} q{v}, {choice['bytes_vs_jpeg_by_kind'][k]:.2f}× bytes" for k, v in choice["by_kind"].items()
        )
        print(
            f"| {fmt} | {choice['quality']} | {choice['ssim']:.4f} | {choice['bytes_vs_jpeg']:.2f}× "
            f"| {choice['cpu_vs_jpeg']:.2f}× | {kinds} |"
        )
