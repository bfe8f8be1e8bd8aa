"""The console's images parts, pure: the upload's limit (the images service's own), its object name, the size check,
and how an upload and the images service's record become one entry of the list."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from console.image_list import IMAGES, PROCESSED, REJECTED, WAITING, entry, merged, record_id, rendition_url
from console.image_uploads import (
    PREFIX,
    UploadRefused,
    check_size,
    content_type,
    file_size,
    object_name,
    safe_filename,
    upload_limit,
)
from console.pages import render
from eventkit.errors import ConfigError
from images import image_records
from images.image_settings import ImageSettings

NOW = datetime(2026, 12, 6, 9, 30, 5, tzinfo=UTC)


def test_the_console_refuses_uploads_over_the_images_services_own_limit() -> None:
    assert upload_limit({}) == ImageSettings().max_upload_bytes
    assert (
        upload_limit({"IMAGE_MAX_UPLOAD_BYTES": "1234"})
        == ImageSettings.from_env({"IMAGE_MAX_UPLOAD_BYTES": "1234"}).max_upload_bytes
    )
    with pytest.raises(ConfigError, match="IMAGE_MAX_UPLOAD_BYTES='lots' must be a positive integer"):
        upload_limit({"IMAGE_MAX_UPLOAD_BYTES": "lots"})


def test_the_size_check_says_what_was_sent_and_what_is_allowed() -> None:
    check_size(1000, 1000)
    with pytest.raises(UploadRefused, match=r"The file is 2\.0 MiB \(2097152 bytes\); photos may be at most 1\.0 MiB"):
        check_size(2 * 1024 * 1024, 1024 * 1024)
    with pytest.raises(UploadRefused, match="empty") as empty:
        check_size(0, 1000)
    assert empty.value.status == 400


def test_each_upload_gets_a_new_readable_name_under_the_console_prefix() -> None:
    first, second = object_name("Holiday 01.JPG", NOW, "aa11"), object_name("Holiday 01.JPG", NOW)

    assert first == f"{PREFIX}/20261206T093005Z-aa11/Holiday-01.JPG"
    assert first != second and second.endswith("/Holiday-01.JPG")


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ana\\photo.jpg", "photo.jpg"),
        ("Ünïcödé 写真.png", "Unicode-.png"),
        ("...", "photo"),
        ("<script>.jpg", "script-.jpg"),
        ("a" * 300 + ".jpg", "a" * 96 + ".jpg"),
    ],
)
def test_a_file_name_becomes_a_safe_object_name_part(sent: str, stored: str) -> None:
    assert safe_filename(sent) == stored


def test_the_stored_type_is_the_browsers_only_when_it_says_image() -> None:
    assert content_type("image/jpeg") == "image/jpeg"
    assert content_type("text/html; charset=utf-8") == "application/octet-stream"
    assert content_type(None) == "application/octet-stream"


def test_a_received_file_is_measured_and_rewound() -> None:
    stream = io.BytesIO(b"x" * 777)
    stream.read(10)

    assert file_size(stream) == 777
    assert stream.tell() == 0


def test_the_record_id_and_collection_are_the_images_services() -> None:
    assert IMAGES == image_records.IMAGES
    assert record_id("shop-uploads", "console/a/b.jpg", 17) == image_records.record_id(
        "shop-uploads", "console/a/b.jpg", 17
    )


def _rendition(label: str, fmt: str, width: int, height: int) -> dict[str, object]:
    name = f"console/x/p.jpg/{label}.{'jpg' if fmt == 'jpeg' else fmt}"
    return {"label": label, "format": fmt, "name": name, "width": width, "height": height, "size": 100, "bucket": "r"}


def test_an_upload_waits_then_shows_its_renditions_largest_first() -> None:
    upload = {"name": "console/x/p.jpg", "filename": "p.jpg", "size": 5, "uploaded_at": NOW}
    record = {
        "status": "processed",
        "name": "console/x/p.jpg",
        "format": "JPEG",
        "width": 1200,
        "height": 900,
        "recorded_at": NOW + timedelta(seconds=2),
        "renditions": [
            _rendition("thumb", "webp", 200, 150),
            _rendition("large", "jpeg", 1200, 900),
            _rendition("thumb", "jpeg", 200, 150),
            _rendition("large", "webp", 1200, 900),
        ],
    }

    waiting, done = entry("id1", upload, None), entry("id1", upload, record)

    assert (waiting.status, waiting.filename, waiting.renditions) == (WAITING, "p.jpg", ())
    assert done.status == PROCESSED and (done.width, done.height, done.source_format) == (1200, 900, "JPEG")
    assert [(r.label, [f.format for f in r.files]) for r in done.renditions] == [
        ("large", ["jpeg", "webp"]),
        ("thumb", ["webp", "jpeg"]),
    ]
    assert done.renditions[1].shown.url == rendition_url("console/x/p.jpg/thumb.jpg")


def test_a_rejection_says_its_reason_in_words() -> None:
    record = {
        "status": "rejected",
        "name": "elsewhere/notes.jpg",
        "reason": "not_an_image",
        "detail": "cannot identify",
    }

    rejected = entry("id2", None, record)

    assert (rejected.status, rejected.filename, rejected.reason) == (REJECTED, "notes.jpg", "not_an_image")
    assert rejected.reason_text == "the file is not an image" and rejected.detail == "cannot identify"
    assert rejected.when_label == "Recorded"  # uploaded from elsewhere: the console knows when it was recorded


def test_the_list_is_newest_first_an_upload_and_its_record_as_one() -> None:
    uploads = {
        "a": {"name": "console/a", "uploaded_at": NOW},
        "b": {"name": "console/b", "uploaded_at": NOW + timedelta(minutes=1)},
    }
    records = {
        "a": {"status": "rejected", "name": "console/a", "reason": "empty", "recorded_at": NOW},
        "c": {"status": "rejected", "name": "other/c", "reason": "corrupt", "recorded_at": NOW - timedelta(hours=1)},
    }

    listed = merged(uploads, records, limit=2)

    assert [(e.id, e.status) for e in listed] == [("b", WAITING), ("a", REJECTED)]


def test_the_list_escapes_names_and_reasons() -> None:
    hostile = "<img src=x onerror=alert(1)>"
    record = {"status": "rejected", "name": f"x/{hostile}", "reason": "corrupt", "detail": hostile}

    body, _, _ = render("_image_list.html", entries=[entry("id3", None, record)], waiting=0)

    assert hostile not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
