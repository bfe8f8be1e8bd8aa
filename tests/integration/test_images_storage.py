"""The images service's Cloud Storage edge against fake-gcs-server: exact-generation reads, write-once renditions.

Uses buckets of its own (not the stack's uploads bucket), so nothing here triggers the images service.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core.exceptions import Conflict

from eventkit.clients import reset_clients, storage_client
from images.image_storage import NewerSourceError, delete_leftovers, download, object_info, write_rendition
from images.upload_checks import MARKER_KEY, SOURCE_GENERATION_KEY, SPEC_KEY, rendition_metadata


@pytest.fixture
def client(stack: dict[str, Any]) -> Iterator[Any]:
    reset_clients()  # bind to this session's emulator
    yield storage_client(stack["project"])
    reset_clients()


@pytest.fixture
def bucket(client: Any) -> str:
    name = f"it-images-{uuid.uuid4().hex[:12]}"
    with contextlib.suppress(Conflict):
        client.create_bucket(name)
    return name


def _write(
    client: Any, bucket: str, name: str, data: bytes, generation: int, spec: str = "spec-a", source: str = "src.jpg"
):  # type: ignore[no-untyped-def]
    return write_rendition(
        client,
        bucket,
        name,
        data,
        content_type="image/jpeg",
        cache_control="public, max-age=60",
        metadata=rendition_metadata(f"gs://up/{source}#{generation}", generation, "large", spec),
        source_generation=generation,
    )


def test_a_rendition_is_created_with_its_headers_and_marker(client: Any, bucket: str) -> None:
    result = _write(client, bucket, "ü dir/photo 1.jpg/large.jpg", b"jpeg-bytes", 100)

    blob = client.bucket(bucket).get_blob("ü dir/photo 1.jpg/large.jpg")
    assert (result.written, result.size) == (True, 10)
    assert blob.download_as_bytes() == b"jpeg-bytes"
    assert (blob.content_type, blob.cache_control) == ("image/jpeg", "public, max-age=60")
    assert blob.metadata[MARKER_KEY] == "gs://up/src.jpg#100"
    assert blob.metadata[SOURCE_GENERATION_KEY] == "100"


def test_a_redelivery_never_rewrites_a_rendition(client: Any, bucket: str) -> None:
    _write(client, bucket, "a.jpg/large.jpg", b"first", 100)
    generation = client.bucket(bucket).get_blob("a.jpg/large.jpg").generation

    again = _write(client, bucket, "a.jpg/large.jpg", b"second attempt", 100)

    blob = client.bucket(bucket).get_blob("a.jpg/large.jpg")
    assert (again.written, again.size) == (False, 5)
    assert blob.generation == generation
    assert blob.download_as_bytes() == b"first"


def test_a_newer_source_generation_replaces_the_rendition(client: Any, bucket: str) -> None:
    _write(client, bucket, "a.jpg/large.jpg", b"old", 100)

    newer = _write(client, bucket, "a.jpg/large.jpg", b"new", 200)

    blob = client.bucket(bucket).get_blob("a.jpg/large.jpg")
    assert newer.written
    assert blob.download_as_bytes() == b"new"
    assert blob.metadata[SOURCE_GENERATION_KEY] == "200"


def test_the_same_source_version_under_another_spec_replaces_the_rendition(client: Any, bucket: str) -> None:
    _write(client, bucket, "a.jpg/large.jpg", b"made under A", 100, spec="spec-a")

    again = _write(client, bucket, "a.jpg/large.jpg", b"made under B", 100, spec="spec-b")
    repeated = _write(client, bucket, "a.jpg/large.jpg", b"B, redelivered", 100, spec="spec-b")

    blob = client.bucket(bucket).get_blob("a.jpg/large.jpg")
    assert (again.written, repeated.written) == (True, False)
    assert (blob.download_as_bytes(), blob.metadata[SPEC_KEY]) == (b"made under B", "spec-b")


def test_what_the_settings_no_longer_make_is_deleted_and_nothing_else(client: Any, bucket: str) -> None:
    for name in ("a.jpg/large.jpg", "a.jpg/large.webp", "a.jpg/medium.jpg", "a.jpg/medium.webp"):
        _write(client, bucket, name, b"A", 100, source="a.jpg")
    _write(client, bucket, "a.jpg/large.jpg/thumb.jpg", b"another upload's", 7, source="a.jpg/large.jpg")
    _write(client, bucket, "a.jpg/hero.jpg", b"from a newer version", 300, source="a.jpg")
    client.bucket(bucket).blob("a.jpg/notes.txt").upload_from_string(b"not ours: no marker")

    deleted = delete_leftovers(
        client,
        bucket,
        source_bucket="up",
        source_name="a.jpg",
        source_generation=100,
        keep={"a.jpg/large.jpg", "a.jpg/large.avif"},
    )

    assert sorted(deleted) == ["a.jpg/large.webp", "a.jpg/medium.jpg", "a.jpg/medium.webp"]
    left = sorted(blob.name for blob in client.list_blobs(bucket))
    assert left == ["a.jpg/hero.jpg", "a.jpg/large.jpg", "a.jpg/large.jpg/thumb.jpg", "a.jpg/notes.txt"]
    assert (
        delete_leftovers(
            client, bucket, source_bucket="up", source_name="a.jpg", source_generation=100, keep={"a.jpg/large.jpg"}
        )
        == []
    )  # a redelivery finds nothing more to delete


def test_an_older_source_generation_never_overwrites_a_newer_rendition(client: Any, bucket: str) -> None:
    _write(client, bucket, "a.jpg/large.jpg", b"new", 200)

    with pytest.raises(NewerSourceError, match="source generation 200"):
        _write(client, bucket, "a.jpg/large.jpg", b"old", 100)
    assert client.bucket(bucket).get_blob("a.jpg/large.jpg").download_as_bytes() == b"new"


def test_download_reads_exactly_the_generation_asked_for(client: Any, bucket: str) -> None:
    blob = client.bucket(bucket).blob("deep/path/with space/ü.jpg")
    blob.upload_from_string(b"x" * 20_000_000)  # spills past the in-memory spool
    generation = blob.generation

    source = download(client, bucket, "deep/path/with space/ü.jpg", generation)

    assert source is not None
    with source:
        assert source.read(5) == b"xxxxx"
        source.seek(0, 2)
        assert source.tell() == 20_000_000
    assert object_info(client, bucket, "deep/path/with space/ü.jpg", generation).size == 20_000_000


def test_a_missing_object_or_generation_reads_as_gone(client: Any, bucket: str) -> None:
    assert download(client, bucket, "nothing-here.jpg", 1) is None
    assert object_info(client, bucket, "nothing-here.jpg", 1) is None
