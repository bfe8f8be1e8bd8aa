"""The images service's pure decisions: which renditions, how big, what name, what to do before downloading."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eventkit.catalog import CATALOG
from eventkit.catalog.images import IMAGE_PROCESSED, IMAGE_REJECTED, ImageProcessed, ImageRejected, Rendition
from eventkit.errors import ConfigError
from images.image_records import image_record, is_current, record_id, source_id, source_record, staleness
from images.image_settings import ImageSettings
from images.renditions import (
    DEFAULT_SPECS,
    Encoding,
    PlannedRendition,
    RenditionSpec,
    output_formats,
    plan_renditions,
    rendition_name,
    source_uri,
    spec_fingerprint,
    upright_size,
)
from images.upload_checks import MARKER_KEY, Action, is_stale, rendition_metadata, screen

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def test_a_12_megapixel_photo_gets_the_three_default_renditions_largest_first() -> None:
    assert plan_renditions(4000, 3000, DEFAULT_SPECS) == [
        PlannedRendition("large", 1600, 1200),
        PlannedRendition("medium", 800, 600),
        PlannedRendition("thumb", 200, 150),
    ]


def test_portrait_sizes_follow_the_longest_edge() -> None:
    assert plan_renditions(3000, 4000, DEFAULT_SPECS)[0] == PlannedRendition("large", 1200, 1600)


def test_renditions_never_upscale_a_small_source() -> None:
    planned = plan_renditions(640, 480, DEFAULT_SPECS)

    assert [(p.width, p.height) for p in planned] == [(640, 480), (640, 480), (200, 150)]


def test_extreme_aspect_ratios_keep_at_least_one_pixel() -> None:
    assert plan_renditions(10000, 3, DEFAULT_SPECS)[-1] == PlannedRendition("thumb", 200, 1)


def test_configured_specs_are_planned_largest_first_whatever_their_order() -> None:
    specs = (RenditionSpec("s", 100), RenditionSpec("xl", 2000), RenditionSpec("m", 500))

    assert [p.label for p in plan_renditions(4000, 4000, specs)] == ["xl", "m", "s"]


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_quarter_turn_orientations_swap_width_and_height(orientation: int) -> None:
    assert upright_size(4000, 3000, orientation) == (3000, 4000)
    assert PlannedRendition("large", 1200, 1600).stored_size(orientation) == (1600, 1200)


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_other_orientations_keep_width_and_height(orientation: int) -> None:
    assert upright_size(4000, 3000, orientation) == (4000, 3000)


def test_zero_sized_images_are_refused_by_the_planner() -> None:
    with pytest.raises(ValueError, match="at least 1×1"):
        plan_renditions(0, 10, DEFAULT_SPECS)


def test_every_listed_format_is_made_and_transparency_replaces_jpeg() -> None:
    assert output_formats(False) == ("JPEG", "WEBP")
    assert output_formats(False, ("JPEG", "WEBP", "AVIF")) == ("JPEG", "WEBP", "AVIF")
    assert output_formats(True) == ("WEBP",)  # JPEG's stand-in is WebP, already listed: once
    assert output_formats(True, ("JPEG", "WEBP"), "PNG") == ("PNG", "WEBP")
    assert output_formats(True, ("JPEG", "AVIF"), "PNG") == ("PNG", "AVIF")
    assert output_formats(True, ("JPEG",)) == ("WEBP",)


def test_the_fingerprint_follows_what_decides_the_renditions_and_nothing_else() -> None:
    base = ImageSettings.from_env({})
    same = [
        {"IMAGE_RENDITIONS": "thumb:200,large:1600,medium:800"},  # order does not change the renditions
        {"IMAGE_MAX_UPLOAD_BYTES": "1000", "IMAGE_MAX_PIXELS": "5", "IMAGE_THREADS": "3"},
        {"IMAGE_CACHE_CONTROL": "no-store"},
        {"IMAGE_AVIF_QUALITY": "40"},  # AVIF is not made by default
    ]
    other = [
        {"IMAGE_RENDITIONS": "large:1600,medium:800,thumb:240"},
        {"IMAGE_RENDITIONS": "large:1600,medium:800,small:200"},
        {"IMAGE_FORMATS": "jpeg,webp,avif"},
        {"IMAGE_FORMATS": "webp,jpeg"},  # the event lists variants in this order
        {"IMAGE_JPEG_QUALITY": "84"},
        {"IMAGE_WEBP_QUALITY": "80"},
        {"IMAGE_TRANSPARENT_FORMAT": "png"},
    ]

    assert len(base.spec) == 16 and base.spec == spec_fingerprint(DEFAULT_SPECS, Encoding())
    assert [ImageSettings.from_env(env).spec for env in same] == [base.spec] * len(same)
    fingerprints = {ImageSettings.from_env(env).spec for env in other}
    assert len(fingerprints) == len(other) and base.spec not in fingerprints


def test_rendition_names_are_deterministic_under_the_source_name() -> None:
    assert rendition_name("products/mug 1/Photo ü.HEIC", "large", "JPEG") == "products/mug 1/Photo ü.HEIC/large.jpg"
    assert rendition_name("a.png", "thumb", "WEBP") == "a.png/thumb.webp"


def test_source_uri_escapes_what_would_be_ambiguous() -> None:
    assert source_uri("shop-uploads", "a b/c#d.jpg", 7) == "gs://shop-uploads/a%20b/c%23d.jpg#7"


def _screen(bucket: str = "shop-uploads", size: int = 1000, metadata: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return screen(bucket=bucket, size=size, metadata=metadata or {}, uploads_bucket="shop-uploads", max_bytes=5000)


def test_an_ordinary_upload_is_converted() -> None:
    assert _screen().action is Action.CONVERT


def test_objects_outside_the_uploads_bucket_are_ignored() -> None:
    screening = _screen(bucket="shop-renditions")

    assert (screening.action, screening.reason) == (Action.IGNORE, "not_uploads_bucket")


def test_the_converters_own_output_is_ignored_even_in_the_uploads_bucket() -> None:
    screening = _screen(metadata=rendition_metadata("gs://shop-uploads/a.jpg#1", 1, "large", "s"))

    assert MARKER_KEY in rendition_metadata("x", 1, "large", "s")
    assert (screening.action, screening.reason) == (Action.IGNORE, "own_output")


def test_empty_objects_are_rejected_before_download() -> None:
    screening = _screen(size=0)

    assert (screening.action, screening.reason) == (Action.REJECT, "empty")


def test_objects_over_the_size_limit_are_rejected_before_download() -> None:
    screening = _screen(size=5001)

    assert (screening.action, screening.reason) == (Action.REJECT, "too_large")
    assert "5001 bytes; the limit is 5000" in screening.detail
    assert _screen(size=5000).action is Action.CONVERT


def test_an_older_generation_than_the_newest_handled_is_stale() -> None:
    assert is_stale(5, 7)
    assert not is_stale(7, 7)  # the same version: the record decides (duplicate), not staleness
    assert not is_stale(8, 7)
    assert not is_stale(1, None)


def test_settings_default_to_the_issue_values() -> None:
    settings = ImageSettings.from_env({})

    assert [(s.label, s.longest_edge) for s in settings.specs] == [("large", 1600), ("medium", 800), ("thumb", 200)]
    assert settings.encoding == Encoding(("JPEG", "WEBP"), "WEBP", jpeg_quality=85, webp_quality=79, avif_quality=64)
    assert settings.max_upload_bytes == 50 * 1024 * 1024


def test_settings_are_read_from_the_environment() -> None:
    settings = ImageSettings.from_env(
        {
            "IMAGE_RENDITIONS": "hero:2400, card:600",
            "IMAGE_FORMATS": " AVIF, jpeg",
            "IMAGE_JPEG_QUALITY": "78",
            "IMAGE_WEBP_QUALITY": "70",
            "IMAGE_AVIF_QUALITY": "55",
            "IMAGE_TRANSPARENT_FORMAT": "png",
            "IMAGE_MAX_UPLOAD_BYTES": "1000",
            "IMAGE_MAX_PIXELS": "2000000",
            "IMAGE_CACHE_CONTROL": "public, max-age=60",
        }
    )

    assert settings.specs == (RenditionSpec("hero", 2400), RenditionSpec("card", 600))
    assert settings.encoding == Encoding(("AVIF", "JPEG"), "PNG", jpeg_quality=78, webp_quality=70, avif_quality=55)
    assert (settings.max_upload_bytes, settings.max_pixels, settings.cache_control) == (
        1000,
        2000000,
        "public, max-age=60",
    )


def test_bad_settings_stop_start_up_naming_each_variable() -> None:
    with pytest.raises(ConfigError) as error:
        ImageSettings.from_env(
            {
                "IMAGE_RENDITIONS": "large=1600",
                "IMAGE_JPEG_QUALITY": "101",
                "IMAGE_TRANSPARENT_FORMAT": "gif",
                "IMAGE_FORMATS": "jpeg,gif,JPEG",
                "IMAGE_AVIF_QUALITY": "0",
            }
        )

    message = str(error.value)
    assert "IMAGE_RENDITIONS[0]='large=1600' must be label:edge" in message
    assert "IMAGE_JPEG_QUALITY='101' must be an integer in 1..95" in message
    assert "IMAGE_TRANSPARENT_FORMAT='gif' must be webp or png" in message
    assert "IMAGE_FORMATS: 'gif' is not one of jpeg, webp, avif" in message
    assert "IMAGE_FORMATS: 'jpeg' appears twice" in message
    assert "IMAGE_AVIF_QUALITY='0' must be an integer in 1..100" in message


def test_record_ids_differ_per_generation_and_fit_firestore() -> None:
    first, second = record_id("b", "a/b c.jpg", 1), record_id("b", "a/b c.jpg", 2)

    assert first != second
    assert "/" not in first and len(first) == 40
    assert source_id("b", "a/b c.jpg") == source_id("b", "a/b c.jpg") != first


def test_records_carry_the_event_data_and_a_status() -> None:
    rendition = Rendition(
        label="large", bucket="r", name="a.jpg/large.jpg", width=10, height=5, size=99, content_type="image/jpeg"
    )
    processed = ImageProcessed(
        bucket="u", name="a.jpg", generation=3, format="JPEG", width=10, height=5, renditions=[rendition]
    )
    rejected = ImageRejected(bucket="u", name="b.jpg", generation=4, reason="truncated", detail="cut short")

    assert image_record(processed, now=NOW)["status"] == "processed"
    assert image_record(processed, now=NOW)["renditions"][0]["size"] == 99
    assert image_record(rejected, now=NOW)["reason"] == "truncated"
    assert source_record(rejected, now=NOW)["generation"] == 4


def test_image_event_types_are_in_the_catalog_and_validate_their_data() -> None:
    assert {IMAGE_PROCESSED, IMAGE_REJECTED} <= set(CATALOG.types)
    with pytest.raises(Exception, match="reason"):
        CATALOG.validate(IMAGE_REJECTED, {"bucket": "u", "name": "a", "generation": 1, "reason": "meh"})


def test_a_version_is_current_when_rendered_under_the_spec_or_rejected_under_any() -> None:
    assert is_current({"status": "processed", "spec": "a"}, "a")
    assert not is_current({"status": "processed", "spec": "a"}, "b")
    assert not is_current({"status": "processed"}, "a")  # recorded before fingerprints: stale
    assert is_current({"status": "rejected", "spec": None}, "b")  # a broken upload stays broken
    assert not is_current(None, "a")


def test_staleness_of_a_listed_object_from_its_source_document() -> None:
    assert staleness(5, None, "a") == "missing"
    assert staleness(5, {"generation": 4, "status": "processed", "spec": "a"}, "a") == "missing"
    assert staleness(5, {"generation": 5, "status": "processed", "spec": "old"}, "a") == "stale"
    assert staleness(5, {"generation": 5, "status": "processed", "spec": "a"}, "a") is None
    assert staleness(5, {"generation": 5, "status": "rejected", "spec": None}, "a") is None
    assert staleness(5, {"generation": 6, "status": "processed", "spec": "old"}, "a") is None  # listed before a newer
