"""Threads in the image pipeline: strips give Pillow's pixels, concurrent conversions give sequential results."""

from __future__ import annotations

import io
import platform
from concurrent.futures import ThreadPoolExecutor

import image_samples as samples
import pytest
from PIL import Image, ImageChops, ImageStat

from eventkit.errors import ConfigError
from images.cpu_pool import default_threads
from images.image_settings import ImageSettings
from images.imaging import convert
from images.malloc_tuning import retain_freed_memory
from images.renditions import DEFAULT_SPECS, Encoding
from images.strip_resize import resize

LANCZOS = Image.Resampling.LANCZOS


def _photo(mode: str, size: tuple[int, int]) -> Image.Image:
    image = Image.open(io.BytesIO(samples.photo_jpeg(*size)))
    return image.convert(mode)


def _differences(a: Image.Image, b: Image.Image) -> tuple[int, float]:
    """Largest per-channel difference, and the share of channel values that differ at all."""
    assert a.size == b.size and a.mode == b.mode
    histogram = ImageChops.difference(a, b).histogram()
    return max(i % 256 for i, n in enumerate(histogram) if n), 1 - sum(histogram[::256]) / sum(histogram)


@pytest.mark.parametrize(
    ("mode", "source", "target", "gap", "threads"),
    [
        ("RGB", (2000, 1500), (1600, 1200), 2.0, 2),  # the large rendition of a 3 MP photo
        ("RGB", (3000, 2000), (1600, 1067), 2.0, 2),  # ... of a 24 MP photo decoded at half scale
        ("RGB", (1600, 1200), (800, 600), 2.0, 3),  # exactly half, three strips
        ("RGB", (2400, 1800), (600, 450), 2.0, 2),  # factor 4: Pillow's reduce() runs first
        ("L", (1999, 1333), (1201, 801), None, 4),  # odd sizes, no reducing gap, four strips
        ("CMYK", (1800, 1200), (1000, 667), 2.0, 2),
    ],
)
def test_strips_give_the_pixels_of_one_resize(
    mode: str, source: tuple[int, int], target: tuple[int, int], gap: float | None, threads: int
) -> None:
    image = _photo(mode, source)

    whole = image.resize(target, LANCZOS, reducing_gap=gap)
    strips = resize(image, target, reducing_gap=gap, threads=threads)

    largest, share = _differences(whole, strips)
    assert largest <= 1, f"a strip differs by {largest} from the single call"
    assert share < 0.001, f"{share:.4%} of values differ (floating-point rounding of the weights only)"


@pytest.mark.parametrize(
    ("mode", "target"),
    [("RGBA", (1000, 750)), ("RGB", (400, 300))],  # premultiplied alpha; too small to be worth a thread
)
def test_what_is_not_split_is_exactly_one_resize(mode: str, target: tuple[int, int]) -> None:
    image = _photo(mode, (1600, 1200))

    assert (
        resize(image, target, reducing_gap=2.0, threads=4).tobytes()
        == image.resize(target, LANCZOS, reducing_gap=2.0).tobytes()
    )


def test_the_same_size_is_the_same_image() -> None:
    image = _photo("RGB", (640, 480))

    assert resize(image, (640, 480), reducing_gap=2.0, threads=2) is image


def test_threads_do_not_change_the_renditions() -> None:
    data = samples.photo_jpeg(2400, 1600, quality=92)

    # Compared through JPEG: WebP's encoder decisions flip on the ±1 of a strip, and its mean difference is ~1.
    jpeg = Encoding(formats=("JPEG",))
    one = convert(io.BytesIO(data), DEFAULT_SPECS, threads=1, encoding=jpeg)
    two = convert(io.BytesIO(data), DEFAULT_SPECS, threads=2, encoding=jpeg)

    assert [(r.label, r.width, r.height, r.format) for r in one.renditions] == [
        (r.label, r.width, r.height, r.format) for r in two.renditions
    ]
    for a, b in zip(one.renditions, two.renditions, strict=True):
        pixels_a, pixels_b = Image.open(io.BytesIO(a.data)), Image.open(io.BytesIO(b.data))
        mean_difference = ImageStat.Stat(ImageChops.difference(pixels_a, pixels_b)).mean
        assert max(mean_difference) < 0.05, (a.label, mean_difference)


def test_concurrent_conversions_share_the_pool_and_match_sequential_ones() -> None:
    photos = [samples.photo_jpeg(1800 + 100 * i, 1200, seed=i) for i in range(6)]
    sequential = [convert(io.BytesIO(p), DEFAULT_SPECS, threads=2).renditions for p in photos]

    with ThreadPoolExecutor(max_workers=6) as requests:
        concurrent = list(requests.map(lambda p: convert(io.BytesIO(p), DEFAULT_SPECS, threads=2).renditions, photos))

    assert [[r.data for r in rs] for rs in concurrent] == [[r.data for r in rs] for rs in sequential]


def test_threads_setting_defaults_to_the_cpus_and_is_checked() -> None:
    assert ImageSettings.from_env({}).threads == default_threads()
    assert 1 <= default_threads() <= 4
    assert ImageSettings.from_env({"IMAGE_THREADS": "3"}).threads == 3
    with pytest.raises(ConfigError, match=r"IMAGE_THREADS='0' must be an integer in 1\.\.16"):
        ImageSettings.from_env({"IMAGE_THREADS": "0"})


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(3) is glibc's; elsewhere it is a no-op")
def test_freed_image_memory_is_kept_on_glibc() -> None:
    assert retain_freed_memory() is True
