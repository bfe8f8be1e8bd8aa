"""End to end on the local stack: an upload to the uploads bucket (fake-gcs-server) → OBJECT_FINALIZE
notification on `upload-events` (Pub/Sub emulator) → push to the images service → renditions in the renditions
bucket, the record in Firestore and one ImageProcessed/ImageRejected event (outbox)."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import image_samples as samples
import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1, storage
from PIL import Image
from waiting import wait_for

from eventkit.catalog.images import IMAGE_PROCESSED, IMAGE_REJECTED
from images.image_records import IMAGES, record_id
from images.image_settings import ImageSettings
from images.upload_checks import MARKER_KEY, SOURCE_GENERATION_KEY, SPEC_KEY

UPLOADS, RENDITIONS = "shop-uploads", "shop-renditions"


@pytest.fixture
def gcs(clean_stack: dict[str, Any]) -> storage.Client:
    return storage.Client(project=clean_stack["project"], credentials=AnonymousCredentials())


def _upload(gcs: storage.Client, name: str, data: bytes, metadata: dict[str, str] | None = None) -> storage.Blob:
    blob = gcs.bucket(UPLOADS).blob(name)
    blob.metadata = metadata
    blob.upload_from_string(data)
    return blob


def _record(db: Any, blob: storage.Blob) -> dict[str, Any] | None:
    return db.collection(IMAGES).document(record_id(blob.bucket.name, blob.name, blob.generation)).get().to_dict()


def _key(blob: storage.Blob, generation: int | None = None) -> str:
    return f"{blob.bucket.name}/{blob.name}#{generation or blob.generation}"


def _notification(blob: storage.Blob, generation: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The OBJECT_FINALIZE notification Cloud Storage (and fake-gcs-server) sends for this object version."""
    resource = dict(blob._properties)
    if generation is not None:
        resource["generation"] = str(generation)
    attributes = {
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
        "bucketId": blob.bucket.name,
        "objectId": blob.name,
        "objectGeneration": str(resource["generation"]),
    }
    return json.dumps(resource).encode(), attributes


def _push(stack: dict[str, Any], blob: storage.Blob, generation: int | None = None, **extra: str) -> requests.Response:
    """Deliver a notification straight to the service, as a Pub/Sub push would (``extra``: more attributes)."""
    import base64

    data, attributes = _notification(blob, generation)
    attributes |= extra
    body = {
        "message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": uuid.uuid4().hex},
        "subscription": f"projects/{stack['project']}/subscriptions/images-upload-events",
    }
    return requests.post(stack["services"]["images"], json=body, timeout=30)


def _log(service_log: Callable[[str], str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in service_log("images").splitlines() if line.startswith("{")]


def _log_lines(service_log: Callable[[str], str], message: str, **fields: Any) -> list[dict[str, Any]]:
    return [
        e for e in _log(service_log) if e.get("message") == message and all(e.get(k) == v for k, v in fields.items())
    ]


def _events(db: Any, blob: storage.Blob, event_type: str) -> list[dict[str, Any]]:
    cause = f"images/{_key(blob)}@"  # then the settings' fingerprint
    return [
        d.to_dict()
        for d in db.collection("outbox").stream()
        if (d.to_dict() or {}).get("cause", "").startswith(cause) and d.get("event_type") == event_type
    ]


def _download(gcs: storage.Client, bucket: str, name: str) -> bytes:
    """By name, not through a fetched object's mediaLink: under docker compose that link names the storage
    emulator as the containers reach it (http://storage:4443), not as this machine does."""
    return gcs.bucket(bucket).blob(name).download_as_bytes()


def _renditions(gcs: storage.Client, name: str) -> list[storage.Blob]:
    return list(gcs.list_blobs(RENDITIONS, prefix=f"{name}/"))


def _unique(name: str) -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}/{name}"


@pytest.mark.compose
def test_upload_becomes_renditions_and_a_record_within_ten_seconds(
    clean_stack: dict[str, Any], db: Any, gcs: storage.Client
) -> None:
    name = _unique("Fotos del día/deep/er/mi foto 1.jpg")  # spaces, unicode, a deep path
    photo = samples.oriented_jpeg(6, 2400, 1800, quality=90)  # stored turned; upright 2400×1800; GPS in EXIF

    started = time.monotonic()
    blob = _upload(gcs, name, photo)
    record = wait_for(lambda: _record(db, blob), seconds=10)
    elapsed = time.monotonic() - started

    assert elapsed < 10, f"upload → record took {elapsed:.1f}s"
    assert record["status"] == "processed"
    assert (record["format"], record["width"], record["height"]) == ("JPEG", 2400, 1800)
    assert record["spec"] == ImageSettings.from_env({}).spec  # the stack runs the default settings
    sizes = {"large": (1600, 1200), "medium": (800, 600), "thumb": (200, 150)}
    expected = {(label, fmt): size for label, size in sizes.items() for fmt in ("jpeg", "webp")}
    assert {(r["label"], r["format"]): (r["width"], r["height"]) for r in record["renditions"]} == expected
    for rendition in record["renditions"]:
        stored = gcs.bucket(RENDITIONS).get_blob(rendition["name"])
        extension = {"jpeg": "jpg", "webp": "webp"}[rendition["format"]]
        assert rendition["name"] == f"{name}/{rendition['label']}.{extension}"
        assert stored.content_type == rendition["content_type"] == f"image/{rendition['format']}"
        assert stored.cache_control == ImageSettings().cache_control
        assert stored.size == rendition["size"]
        assert stored.metadata[SOURCE_GENERATION_KEY] == str(blob.generation)
        assert stored.metadata[SPEC_KEY] == record["spec"]
        image = Image.open(io.BytesIO(_download(gcs, RENDITIONS, rendition["name"])))
        assert (image.format.lower(), image.size) == (rendition["format"], (rendition["width"], rendition["height"]))
        assert not image.getexif()  # no GPS, no camera
        colours = samples.quadrant_colours(image)
        assert all(samples.close(colours[q], c, 40) for q, c in samples.QUADRANTS.items()), colours
    events = wait_for(lambda: [e for e in _events(db, blob, IMAGE_PROCESSED) if e["sent"]])
    assert len(events) == 1
    assert json.loads(events[0]["data"])["renditions"][0]["name"] == f"{name}/large.jpg"


def test_same_notification_delivered_five_times_writes_renditions_once(
    clean_stack: dict[str, Any], db: Any, gcs: storage.Client, service_log: Callable[[str], str]
) -> None:
    name = _unique("photo.jpg")
    blob = _upload(gcs, name, samples.photo_jpeg(2000, 1500))
    data, attributes = _notification(blob)
    publisher = pubsub_v1.PublisherClient()
    for _ in range(4):  # the upload's own notification + 4 identical ones: 5 deliveries
        publisher.publish(clean_stack["topics"]["upload-events"], data, **attributes).result(timeout=10)

    def answered() -> int:  # each delivery is answered "processed" (or "duplicate" when the ledger had it)
        return sum(len(_log_lines(service_log, outcome, object=_key(blob))) for outcome in ("processed", "duplicate"))

    wait_for(lambda: answered() >= 5, seconds=30)

    assert len(_log_lines(service_log, "rendition written", source=_key(blob))) == 6
    written = {b.name: (b.generation, b.metageneration) for b in _renditions(gcs, name)}
    assert sorted(written) == [
        f"{name}/{label}.{ext}" for label in ("large", "medium", "thumb") for ext in ("jpg", "webp")
    ]
    assert all(meta == 1 for _, meta in written.values())
    assert len([d for d in db.collection(IMAGES).stream() if d.get("name") == name]) == 1
    assert len(_events(db, blob, IMAGE_PROCESSED)) == 1
    # A sixth delivery, straight to the service: acknowledged, nothing rewritten.
    assert _push(clean_stack, blob).status_code == 200
    assert {b.name: (b.generation, b.metageneration) for b in _renditions(gcs, name)} == written


@pytest.mark.compose
def test_a_heic_upload_converts(clean_stack: dict[str, Any], db: Any, gcs: storage.Client) -> None:
    blob = _upload(gcs, _unique("IMG_0001.HEIC"), samples.heic(1024, 768))

    record = wait_for(lambda: _record(db, blob), seconds=10)

    assert (record["status"], record["format"]) == ("processed", "HEIF")
    large = _download(gcs, RENDITIONS, f"{blob.name}/large.jpg")
    assert Image.open(io.BytesIO(large)).size == (1024, 768)


@pytest.mark.compose
@pytest.mark.parametrize(
    ("filename", "make", "reason"),
    [
        ("bomb.png", samples.png_bomb, "too_many_pixels"),
        ("cut.jpg", samples.truncated_jpeg, "truncated"),
        ("empty.jpg", lambda: b"", "empty"),
        ("notes.jpg", lambda: b"this is a text file, not a photo\n" * 20, "not_an_image"),
    ],
)
def test_bad_uploads_are_rejected_once_with_a_reason_and_nothing_is_written(
    clean_stack: dict[str, Any],
    db: Any,
    gcs: storage.Client,
    filename: str,
    make: Callable[[], bytes],
    reason: str,
    service_log: Callable[[str], str],
) -> None:
    blob = _upload(gcs, _unique(filename), make())

    record = wait_for(lambda: _record(db, blob), seconds=10)
    redelivered = _push(clean_stack, blob)  # Pub/Sub would redeliver the same notification: still once

    assert (record["status"], record["reason"]) == ("rejected", reason)
    assert record["detail"]
    assert redelivered.status_code == 200
    assert _renditions(gcs, blob.name) == []
    assert len(_events(db, blob, IMAGE_REJECTED)) == 1
    assert _events(db, blob, IMAGE_PROCESSED) == []
    # Also filed for operators (failures + an ERROR line), once: the redelivery was acknowledged without either.
    failures = wait_for(
        lambda: [d.to_dict() for d in db.collection("failures").stream() if d.get("consumer") == "images"]
    )
    assert [f["reason"] for f in failures] == [reason]
    errors = [e for e in _log(service_log) if e.get("severity") == "ERROR" and e.get("object") == _key(blob)]
    assert len(errors) == 1
    assert errors[0]["reason"] == reason


def test_the_converters_own_output_and_other_buckets_are_never_processed(
    clean_stack: dict[str, Any], db: Any, gcs: storage.Client, service_log: Callable[[str], str]
) -> None:
    marked = _upload(gcs, _unique("large.jpg"), samples.photo_jpeg(400, 300), {MARKER_KEY: "gs://shop-uploads/x#1"})
    wait_for(lambda: _log_lines(service_log, "skipped", object=_key(marked), skip_reason="own_output"))
    elsewhere = gcs.bucket(RENDITIONS).blob(_unique("photo.jpg"))
    elsewhere.upload_from_string(samples.photo_jpeg(400, 300))

    answer = _push(clean_stack, elsewhere)

    assert answer.status_code == 200
    assert _log_lines(service_log, "skipped", object=_key(elsewhere), skip_reason="not_uploads_bucket")
    assert list(db.collection(IMAGES).stream()) == []
    assert _renditions(gcs, marked.name) == [] and _renditions(gcs, elsewhere.name) == []


def test_an_event_for_an_older_generation_is_skipped(
    clean_stack: dict[str, Any], db: Any, gcs: storage.Client, service_log: Callable[[str], str]
) -> None:
    name = _unique("product.png")
    first = _upload(gcs, name, samples.encode(Image.new("RGB", (300, 300), (255, 0, 0)), "PNG"))
    wait_for(lambda: _record(db, first))
    second = _upload(gcs, name, samples.encode(Image.new("RGB", (300, 300), (0, 0, 255)), "PNG"))
    wait_for(lambda: _record(db, second))

    late = _push(clean_stack, second, generation=second.generation - 1)  # a version between the two, arriving late

    assert late.status_code == 200
    assert _log_lines(service_log, "skipped", object=_key(second, second.generation - 1), skip_reason="superseded")
    assert db.collection(IMAGES).document(record_id(UPLOADS, name, second.generation - 1)).get().exists is False
    large = gcs.bucket(RENDITIONS).get_blob(f"{name}/large.jpg")
    assert large.metadata[SOURCE_GENERATION_KEY] == str(second.generation)
    assert samples.close(Image.open(io.BytesIO(_download(gcs, RENDITIONS, large.name))).getpixel((10, 10)), (0, 0, 255))


def test_a_backfill_notification_for_other_settings_is_skipped_with_a_warning(
    clean_stack: dict[str, Any], db: Any, gcs: storage.Client, service_log: Callable[[str], str]
) -> None:
    """An old revision (or a misconfigured backfill) must not render under other settings than those asked for."""
    name = _unique("photo.jpg")
    blob = _upload(gcs, name, samples.photo_jpeg(400, 300))
    record = wait_for(lambda: _record(db, blob), seconds=10)
    written = {b.name: b.generation for b in _renditions(gcs, name)}

    answer = _push(clean_stack, blob, shopBackfillSpec="0123456789abcdef")

    assert answer.status_code == 200
    skipped = _log_lines(service_log, "skipped", object=_key(blob), skip_reason="backfill_spec_mismatch")
    warned = [e for e in _log(service_log) if e.get("backfill_spec") == "0123456789abcdef"]
    assert len(skipped) == 1 and [(e["severity"], e["source"]) for e in warned] == [("WARNING", _key(blob))]
    assert _record(db, blob) == record and {b.name: b.generation for b in _renditions(gcs, name)} == written
    assert len(_events(db, blob, IMAGE_PROCESSED)) == 1
