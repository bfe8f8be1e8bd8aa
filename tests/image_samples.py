"""Images the images tests make for themselves with Pillow (no binary fixtures in the repository).

Importable from every test module under tests/ (pytest puts this folder on sys.path for tests/conftest.py).
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Mapping

from PIL import ExifTags, Image

# Upright test card: four solid quadrants, so where each colour lands shows how the image was turned.
QUADRANTS: Mapping[str, tuple[int, int, int]] = {
    "top_left": (220, 30, 30),
    "top_right": (30, 200, 30),
    "bottom_left": (30, 30, 220),
    "bottom_right": (240, 240, 240),
}
# For each EXIF orientation, the transpose that turns the *upright* card into the pixels a camera would store
# (the inverse of what the orientation asks a viewer to do).
_STORED_FROM_UPRIGHT = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def test_card(width: int, height: int) -> Image.Image:
    card = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    card.paste(QUADRANTS["top_left"], (0, 0, half_w, half_h))
    card.paste(QUADRANTS["top_right"], (half_w, 0, width, half_h))
    card.paste(QUADRANTS["bottom_left"], (0, half_h, half_w, height))
    card.paste(QUADRANTS["bottom_right"], (half_w, half_h, width, height))
    return card


def quadrant_colours(image: Image.Image) -> dict[str, tuple[int, ...]]:
    """The colour at the centre of each quadrant of an (upright) image."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    points = {
        "top_left": (w // 4, h // 4),
        "top_right": (3 * w // 4, h // 4),
        "bottom_left": (w // 4, 3 * h // 4),
        "bottom_right": (3 * w // 4, 3 * h // 4),
    }
    return {name: rgb.getpixel(xy) for name, xy in points.items()}  # type: ignore[misc]


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 24) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def camera_exif(orientation: int = 1, *, gps: bool = True) -> Image.Exif:
    """EXIF as a phone writes it: orientation, camera make/model, and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.Base.Model] = "TestCam Secret Model 9"
    if gps:
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps_ifd[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps_ifd[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.5)
        gps_ifd[ExifTags.GPS.GPSLongitudeRef] = "E"
        gps_ifd[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 3.5)
    return exif


def oriented_jpeg(orientation: int, width: int = 400, height: int = 240, quality: int = 95) -> bytes:
    """A JPEG whose stored pixels need EXIF ``orientation`` to look like the upright card ``width`` × ``height``."""
    card = test_card(width, height)
    method = _STORED_FROM_UPRIGHT[orientation]
    stored = card.transpose(method) if method is not None else card
    return encode(stored, "JPEG", quality=quality, exif=camera_exif(orientation).tobytes())


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def photo_jpeg(width: int, height: int, *, quality: int = 90, seed: int = 7) -> bytes:
    """Photo-like content (gradients and seeded noise; compresses like a photo, not like a flat colour)."""
    gradient = Image.linear_gradient("L").resize((width, height))
    noise = Image.frombytes("L", (width, height), random.Random(seed).randbytes(width * height))
    radial = Image.radial_gradient("L").resize((width, height))
    image = Image.merge("RGB", (gradient, noise, radial))
    return encode(image, "JPEG", quality=quality, exif=camera_exif(1).tobytes())


def png_bomb(width: int = 12_000, height: int = 12_000) -> bytes:
    """A real decompression bomb: a tiny 1-bit PNG that decodes to ``width`` × ``height`` pixels."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row) for _ in range(height)]
    idat = b"".join(chunks) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def corrupt_entropy_jpeg(width: int = 1200, height: int = 900) -> bytes:
    """A JPEG with bytes flipped inside its entropy-coded data, as some cameras write: libjpeg only warns."""
    data = bytearray(photo_jpeg(width, height))
    scan = data.index(b"\xff\xda")  # start of scan
    for offset in range(scan + 4000, scan + 4400, 7):
        if 0xFF not in (data[offset], data[offset - 1]):  # leave markers and byte stuffing alone
            data[offset] ^= 0x24
    return bytes(data)


def truncated_jpeg() -> bytes:
    data = photo_jpeg(640, 480)
    return data[: len(data) * 2 // 3]


def heic(width: int = 640, height: int = 480) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(test_card(width, height), "HEIF", quality=90)


# --- an RGB ICC profile whose red and blue primaries are swapped ---------------------------------------------
# Converting from it to sRGB must turn stored red into blue: a conversion that ignored the profile can't pass.

_D50 = (0.9642, 1.0, 0.8249)
_SRGB_COLORANTS_D50 = {  # sRGB's primaries, chromatically adapted to D50 (as in every sRGB ICC profile)
    "red": (0.4361, 0.2225, 0.0139),
    "green": (0.3851, 0.7169, 0.0971),
    "blue": (0.1431, 0.0606, 0.7141),
}


def swapped_primaries_icc() -> bytes:
    tags = [
        (b"desc", _text_description("red and blue swapped (test)")),
        (b"cprt", b"text" + b"\0" * 4 + b"public domain\0\0\0\0"),
        (b"wtpt", _xyz(_D50)),
        (b"rXYZ", _xyz(_SRGB_COLORANTS_D50["blue"])),
        (b"gXYZ", _xyz(_SRGB_COLORANTS_D50["green"])),
        (b"bXYZ", _xyz(_SRGB_COLORANTS_D50["red"])),
        (b"rTRC", _gamma_curve(2.2)),
        (b"gTRC", _gamma_curve(2.2)),
        (b"bTRC", _gamma_curve(2.2)),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, body = [struct.pack(">I", len(tags))], []
    for signature, data in tags:
        table.append(signature + struct.pack(">II", offset, len(data)))
        padded = data + b"\0" * (-len(data) % 4)
        body.append(padded)
        offset += len(padded)
    size = offset
    header = (
        struct.pack(">I", size)
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + b"".join(_s15f16(v) for v in _D50)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + b"".join(table) + b"".join(body)


def _s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(xyz: tuple[float, float, float]) -> bytes:
    return b"XYZ " + b"\0" * 4 + b"".join(_s15f16(v) for v in xyz)


def _gamma_curve(gamma: float) -> bytes:
    return b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256))


def _text_description(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return b"desc" + b"\0" * 4 + struct.pack(">I", len(ascii_)) + ascii_ + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
