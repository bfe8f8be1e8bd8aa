"""The Pillow pipeline on images the tests make: orientation, metadata, colour, transparency, hostile input."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import image_samples as samples
import pytest
from PIL import Image

import images.imaging
from images.imaging import Converted, EncodedRendition, convert
from images.rejections import ImageRejectedError
from images.renditions import DEFAULT_SPECS, Encoding, RenditionSpec

IMAGES_SOURCE = Path(__file__).resolve().parents[2] / "services" / "images"


def _convert(data: bytes, **options: object) -> Converted:
    return convert(io.BytesIO(data), options.pop("specs", DEFAULT_SPECS), **options)  # type: ignore[arg-type]


def _jpegs(converted: Converted) -> list[EncodedRendition]:
    return [rendition for rendition in converted.renditions if rendition.format == "JPEG"]


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _rejection(data: bytes, **options: object) -> ImageRejectedError:
    with pytest.raises(ImageRejectedError) as error:
        _convert(data, **options)
    return error.value


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright(orientation: int) -> None:
    converted = _convert(samples.oriented_jpeg(orientation, 400, 240))

    assert (converted.width, converted.height) == (400, 240)
    for rendition in converted.renditions:
        image = _open(rendition.data)
        assert image.size == (rendition.width, rendition.height)
        assert image.width > image.height
        colours = samples.quadrant_colours(image)
        for quadrant, expected in samples.QUADRANTS.items():
            assert samples.close(colours[quadrant], expected), (rendition.label, quadrant, colours[quadrant])


@pytest.mark.parametrize("orientation", [6, 8])
def test_large_rotated_photos_are_decoded_at_reduced_scale_and_still_come_out_upright(orientation: int) -> None:
    converted = _convert(samples.oriented_jpeg(orientation, 4000, 3000, quality=90))

    sizes = [(r.label, r.width, r.height) for r in _jpegs(converted)]
    assert sizes == [("large", 1600, 1200), ("medium", 800, 600), ("thumb", 200, 150)]
    colours = samples.quadrant_colours(_open(converted.renditions[0].data))
    assert all(samples.close(colours[q], c) for q, c in samples.QUADRANTS.items()), colours


def test_all_metadata_is_stripped_no_gps_or_camera_data_leaves() -> None:
    source = samples.encode(
        samples.test_card(800, 600),
        "JPEG",
        exif=samples.camera_exif(6).tobytes(),
        icc_profile=samples.swapped_primaries_icc(),
        comment=b"shot at home",
    )
    assert b"TestCam Secret Model 9" in source

    for rendition in _convert(source).renditions:
        image = _open(rendition.data)
        assert not image.getexif(), rendition.label
        assert not {"exif", "icc_profile", "xmp", "comment", "photoshop"} & set(image.info), image.info.keys()
        assert (
            b"TestCam" not in rendition.data and b"Exif" not in rendition.data and b"shot at home" not in rendition.data
        )


def test_embedded_icc_profiles_are_converted_to_srgb() -> None:
    # Stored red in a profile whose red primary is sRGB's blue must come out blue.
    source = samples.encode(
        Image.new("RGB", (300, 200), (255, 0, 0)), "JPEG", quality=95, icc_profile=samples.swapped_primaries_icc()
    )

    for rendition in _convert(source).renditions:
        assert samples.close(_open(rendition.data).getpixel((20, 20)), (0, 0, 255)), rendition.label


def test_without_a_profile_pixels_are_taken_as_srgb() -> None:
    source = samples.encode(Image.new("RGB", (300, 200), (255, 0, 0)), "JPEG", quality=95)

    assert samples.close(_open(_convert(source).renditions[0].data).getpixel((20, 20)), (255, 0, 0))


def test_opaque_images_become_progressive_jpeg_at_the_configured_quality() -> None:
    converted = _convert(samples.photo_jpeg(2000, 1500), encoding=Encoding(jpeg_quality=85))

    assert len(_jpegs(converted)) == 3
    for rendition in _jpegs(converted):
        image = _open(rendition.data)
        assert (rendition.content_type, image.format) == ("image/jpeg", "JPEG")
        assert image.info.get("progressive") or image.info.get("progression")
    low = _convert(samples.photo_jpeg(2000, 1500), encoding=Encoding(jpeg_quality=40))
    assert len(_jpegs(low)[0].data) < len(_jpegs(converted)[0].data)


@pytest.mark.parametrize(
    "formats", [("JPEG", "WEBP"), ("JPEG", "WEBP", "AVIF"), ("AVIF",), ("WEBP", "JPEG")], ids="+".join
)
def test_every_size_is_made_in_each_format_from_one_decode_and_one_resize_per_size(
    formats: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes, resizes = [], []
    real_decode, real_resize = images.imaging._decode, images.imaging.resize
    monkeypatch.setattr(images.imaging, "_decode", lambda *a: decodes.append(1) or real_decode(*a))
    monkeypatch.setattr(images.imaging, "resize", lambda *a, **k: resizes.append(a[1]) or real_resize(*a, **k))

    converted = _convert(samples.oriented_jpeg(6, 2400, 1800), encoding=Encoding(formats=formats))  # type: ignore[arg-type]

    assert (len(decodes), len(resizes)) == (1, len(DEFAULT_SPECS))
    made = [(r.label, r.format) for r in converted.renditions]
    assert made == [(spec.label, fmt) for spec in DEFAULT_SPECS for fmt in formats]
    for rendition in converted.renditions:
        image = _open(rendition.data)
        assert image.format == rendition.format and image.size == (rendition.width, rendition.height)
        assert rendition.content_type == f"image/{rendition.format.lower()}"
        colours = samples.quadrant_colours(image)  # upright in every format
        assert all(samples.close(colours[q], c, 40) for q, c in samples.QUADRANTS.items()), (rendition, colours)
        assert not image.getexif() and "icc_profile" not in image.info


def test_transparency_is_kept_as_webp() -> None:
    image = Image.new("RGBA", (1000, 500), (200, 10, 10, 255))
    image.paste((0, 0, 0, 0), (0, 0, 500, 500))
    converted = _convert(samples.encode(image, "PNG"))

    for rendition in converted.renditions:
        out = _open(rendition.data)
        assert (rendition.format, rendition.content_type, out.format, out.mode) == (
            "WEBP",
            "image/webp",
            "WEBP",
            "RGBA",
        )
        assert out.getpixel((2, 2))[3] == 0
        assert out.getpixel((out.width - 3, 2))[3] == 255
    assert converted.renditions[0].width == 1000


def test_transparency_is_kept_as_png_when_configured() -> None:
    image = Image.new("RGBA", (300, 300), (10, 200, 10, 128))

    converted = _convert(samples.encode(image, "PNG"), encoding=Encoding(transparent_format="PNG"))

    assert [r.format for r in converted.renditions[:2]] == ["PNG", "WEBP"]  # PNG stands in for JPEG
    rendition = converted.renditions[0]

    out = _open(rendition.data)
    assert (rendition.format, out.format) == ("PNG", "PNG")
    assert abs(out.getpixel((5, 5))[3] - 128) <= 1
    assert "icc_profile" not in out.info


def test_an_rgba_image_without_transparent_pixels_becomes_jpeg() -> None:
    rendition = _convert(samples.encode(Image.new("RGBA", (300, 300), (1, 2, 3, 255)), "PNG")).renditions[0]

    assert rendition.format == "JPEG"


def test_a_palette_gif_with_transparency_uses_its_first_frame() -> None:
    first = Image.new("P", (200, 100), 1)
    first.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    first.paste(0, (0, 0, 100, 100))
    second = first.copy()
    second.paste(2, (0, 0, 200, 100))
    data = samples.encode(first, "GIF", save_all=True, append_images=[second], transparency=0)

    rendition = _convert(data).renditions[0]

    out = _open(rendition.data)
    assert rendition.format == "WEBP"
    assert out.getpixel((10, 10))[3] == 0
    assert samples.close(out.getpixel((150, 50))[:3], (255, 0, 0))


@pytest.mark.parametrize(
    ("fmt", "mode", "params"),
    [
        ("PNG", "RGB", {}),
        ("WEBP", "RGB", {"quality": 90}),
        ("TIFF", "RGB", {"compression": "tiff_lzw"}),
        ("BMP", "RGB", {}),
        ("PNG", "L", {}),
        ("TIFF", "CMYK", {}),
        ("PNG", "I;16", {}),
    ],
)
def test_every_accepted_input_format_converts(fmt: str, mode: str, params: dict[str, object]) -> None:
    source = samples.test_card(600, 400).convert(mode if mode != "I;16" else "L")
    if mode == "I;16":
        source = source.convert("I").point(lambda v: v * 256).convert("I;16")

    converted = _convert(samples.encode(source, fmt, **params))

    assert converted.source_format == fmt
    assert [(r.width, r.height) for r in _jpegs(converted)] == [(600, 400), (600, 400), (200, 133)]
    if mode in ("RGB", "CMYK"):
        colours = samples.quadrant_colours(_open(converted.renditions[0].data))
        assert samples.close(colours["top_left"], samples.QUADRANTS["top_left"], 40), colours


def test_heic_as_iphones_upload_it_converts() -> None:
    converted = _convert(samples.heic(640, 480))

    assert converted.source_format == "HEIF"
    assert [(r.format, r.width, r.height) for r in converted.renditions] == [
        ("JPEG", 640, 480),
        ("WEBP", 640, 480),
        ("JPEG", 640, 480),
        ("WEBP", 640, 480),
        ("JPEG", 200, 150),
        ("WEBP", 200, 150),
    ]
    colours = samples.quadrant_colours(_open(converted.renditions[0].data))
    assert samples.close(colours["top_left"], samples.QUADRANTS["top_left"], 40)


def test_libheif_is_loaded_only_once_a_file_may_be_heif(tmp_path: Path) -> None:
    # A fresh process: this one has the plugin already (the HEIC sample is made with it).
    (tmp_path / "photo.jpg").write_bytes(samples.photo_jpeg(320, 240))
    (tmp_path / "notes.jpg").write_bytes(b"just some notes, saved as photo.jpg\n" * 10)
    (tmp_path / "photo.heic").write_bytes(samples.heic(320, 240))
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from images.imaging import convert
        from images.rejections import ImageRejectedError
        from images.renditions import DEFAULT_SPECS

        def outcome(name):
            with open(Path(sys.argv[1], name), "rb") as fp:
                try:
                    return convert(fp, DEFAULT_SPECS).source_format
                except ImageRejectedError as rejection:
                    return rejection.reason

        seen = [outcome("photo.jpg"), outcome("notes.jpg"), str("pillow_heif" in sys.modules)]
        print(*seen, outcome("photo.heic"), "pillow_heif" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=IMAGES_SOURCE, capture_output=True, text=True, check=True
    )

    assert result.stdout.split() == ["JPEG", "not_an_image", "False", "HEIF", "True"]


def test_littlecms_is_loaded_only_by_an_image_that_carries_a_profile(tmp_path: Path) -> None:
    # A fresh process, as above: the colour engine is ~3 ms of a cold start that most uploads never need.
    (tmp_path / "plain.jpg").write_bytes(samples.photo_jpeg(320, 240))
    profiled = Image.new("RGB", (320, 240), (255, 0, 0))
    (tmp_path / "profiled.jpg").write_bytes(
        samples.encode(profiled, "JPEG", quality=95, icc_profile=samples.swapped_primaries_icc())
    )
    script = textwrap.dedent(
        """
        import io, sys
        from pathlib import Path
        from PIL import Image
        from images.imaging import convert
        from images.renditions import DEFAULT_SPECS

        def centre(name):
            with open(Path(sys.argv[1], name), "rb") as fp:
                rendition = convert(fp, DEFAULT_SPECS).renditions[0]
            image = Image.open(io.BytesIO(rendition.data)).convert("RGB")
            return "%d,%d,%d" % image.getpixel((image.width // 2, image.height // 2))

        print(centre("plain.jpg") != "", "PIL.ImageCms" in sys.modules, centre("profiled.jpg"))
        print("PIL.ImageCms" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=IMAGES_SOURCE, capture_output=True, text=True, check=True
    )

    first, second = result.stdout.splitlines()
    converted, loaded_by_plain, profiled_centre = first.split()
    assert (converted, loaded_by_plain, second) == ("True", "False", "True")
    assert samples.close(tuple(int(v) for v in profiled_centre.split(",")), (0, 0, 255))


def test_a_camera_jpeg_with_corrupt_entropy_data_still_converts() -> None:
    data = samples.corrupt_entropy_jpeg(1200, 900)
    assert data != samples.photo_jpeg(1200, 900)

    converted = _convert(data)

    assert converted.renditions[0].width == 1200


def test_a_decompression_bomb_is_rejected_from_its_header() -> None:
    bomb = samples.png_bomb(12_000, 12_000)
    assert len(bomb) < 1_000_000

    error = _rejection(bomb, max_pixels=100_000_000)

    assert error.reason == "too_many_pixels"
    assert "12000×12000 = 144000000 pixels; the limit is 100000000" in str(error)


def test_the_pixel_limit_is_configurable() -> None:
    assert _rejection(samples.photo_jpeg(2000, 1500), max_pixels=1_000_000).reason == "too_many_pixels"


def test_a_truncated_jpeg_is_rejected_as_truncated() -> None:
    error = _rejection(samples.truncated_jpeg())

    assert error.reason == "truncated"
    assert "truncated" in error.detail


def test_a_truncated_png_is_rejected() -> None:
    data = samples.encode(Image.effect_noise((400, 400), 50), "PNG")

    assert _rejection(data[: len(data) // 2]).reason in ("truncated", "corrupt")


def test_a_zero_byte_file_is_rejected_as_empty() -> None:
    assert _rejection(b"").reason == "empty"


def test_a_text_file_named_jpg_is_not_an_image() -> None:
    error = _rejection(b"just some notes, saved as photo.jpg\n" * 10)

    assert error.reason == "not_an_image"


def test_an_image_in_a_format_outside_the_accepted_ones_is_unsupported() -> None:
    error = _rejection(samples.encode(samples.test_card(64, 64), "ICO"))

    assert error.reason == "unsupported_format"
    assert "JPEG, PNG" in str(error)


def test_a_png_with_corrupt_compressed_data_is_rejected_as_corrupt() -> None:
    header = samples.encode(Image.new("RGB", (200, 200)), "PNG")[:33]  # signature + IHDR
    idat = b"this is not zlib data" * 10
    data = header + samples.png_chunk(b"IDAT", idat) + samples.png_chunk(b"IEND", b"")

    error = _rejection(data)

    assert error.reason == "corrupt"
    assert "could not be decoded" in str(error)


def test_configured_rendition_sizes_are_used() -> None:
    converted = _convert(samples.photo_jpeg(3000, 2000), specs=(RenditionSpec("hero", 2400), RenditionSpec("s", 90)))

    assert [(r.label, r.width, r.height) for r in _jpegs(converted)] == [("hero", 2400, 1600), ("s", 90, 60)]
