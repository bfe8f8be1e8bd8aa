"""The images service's pure decisions: which renditions, how big, what name, what to do before downloading."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eventkit.catalog import CATALOG
from eventkit.catalog.images import IMAGE_PROCESSED, IMAGE_REJECTED, ImageProcessed, ImageRejected, Rendition
from eventkit.errors import ConfigError
from images.image_records import image_record, record_id, source_id, source_record
from images.image_settings import ImageSettings
from images.renditions import (
    DEFAULT_SPECS,
    PlannedRendition,
    RenditionSpec,
    output_format,
    plan_renditions,
    rendition_name,
    source_uri,
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


def test_opaque_images_become_jpeg_and_transparent_ones_webp_or_png() -> None:
    assert output_format(False) == "JPEG"
    assert output_format(True) == "WEBP"
    assert output_format(True, "PNG") == "PNG"


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
    screening = _screen(metadata=rendition_metadata("gs://shop-uploads/a.jpg#1", 1, "large"))

    assert MARKER_KEY in rendition_metadata("x", 1, "large")
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
    assert settings.quality == 85
    assert settings.max_upload_bytes == 50 * 1024 * 1024
    assert settings.transparent_format == "WEBP"


def test_settings_are_read_from_the_environment() -> None:
    settings = ImageSettings.from_env(
        {
            "IMAGE_RENDITIONS": "hero:2400, card:600",
            "IMAGE_JPEG_QUALITY": "78",
            "IMAGE_TRANSPARENT_FORMAT": "png",
            "IMAGE_MAX_UPLOAD_BYTES": "1000",
            "IMAGE_MAX_PIXELS": "2000000",
            "IMAGE_CACHE_CONTROL": "public, max-age=60",
        }
    )

    assert settings.specs == (RenditionSpec("hero", 2400), RenditionSpec("card", 600))
    assert (settings.quality, settings.transparent_format) == (78, "PNG")
    assert (settings.max_upload_bytes, settings.max_pixels, settings.cache_control) == (
        1000,
        2000000,
        "public, max-age=60",
    )


def test_bad_settings_stop_start_up_naming_each_variable() -> None:
    with pytest.raises(ConfigError) as error:
        ImageSettings.from_env(
            {"IMAGE_RENDITIONS": "large=1600", "IMAGE_JPEG_QUALITY": "101", "IMAGE_TRANSPARENT_FORMAT": "gif"}
        )

    message = str(error.value)
    assert "IMAGE_RENDITIONS[0]='large=1600' must be label:edge" in message
    assert "IMAGE_JPEG_QUALITY='101' must be an integer in 1..95" in message
    assert "IMAGE_TRANSPARENT_FORMAT='gif' must be webp or png" in message


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
