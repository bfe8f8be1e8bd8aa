"""Telemetry ingest's per-item validation: every problem named, good items kept beside bad ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telemetry.validation import (
    MAX_BATCH_ITEMS,
    BodyShapeError,
    Limits,
    ValidReading,
    parse_rfc3339,
    validate_batch,
    validate_reading,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_future=timedelta(minutes=5), retention=timedelta(hours=24))


def reading(**changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "device_id": "dev-1",
        "reading_id": "r-1",
        "ts": "2024-05-01T11:59:00Z",
        "metrics": {"temperature": 21.5, "count": 3},
    }
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


def test_a_good_reading_is_parsed_with_an_aware_timestamp_and_float_values() -> None:
    result = validate_reading(reading(), NOW, LIMITS)

    assert result == ValidReading(
        "dev-1", "r-1", datetime(2024, 5, 1, 11, 59, tzinfo=UTC), {"temperature": 21.5, "count": 3.0}
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"metrics": {"temperature": float("nan")}}, "body.metrics.temperature: must be a finite number, got NaN"),
        ({"metrics": {"temperature": float("inf")}}, "body.metrics.temperature: must be a finite number, got Infinity"),
        ({"metrics": {"temperature": "21.5"}}, "body.metrics.temperature: must be a finite number, got '21.5'"),
        ({"metrics": {"temperature": True}}, "body.metrics.temperature: must be a finite number, got True"),
        ({"metrics": {"temperature": 10**400}}, "body.metrics.temperature: must be a finite number"),
        ({"metrics": {}}, "body.metrics: must be a non-empty object"),
        ({"metrics": {"1bad": 1}}, "body.metrics: name '1bad' must be"),
        ({"ts": "2024-05-01T13:00:00Z"}, "body.ts: is 3600 s in the future; at most 300 s is allowed"),
        ({"ts": "2024-04-29T12:00:00Z"}, "body.ts: is 172800 s old; readings older than the retention window"),
        ({"ts": "2024-05-01T11:59:00"}, "body.ts: must be an RFC 3339 timestamp"),
        ({"ts": "20240501T115900Z"}, "body.ts: must be an RFC 3339 timestamp"),
        ({"ts": 1714564740}, "body.ts: must be an RFC 3339 timestamp"),
        ({"device_id": "dev/1"}, "body.device_id: must be 1-128 letters"),
        ({"reading_id": ""}, "body.reading_id: must be a non-empty printable string"),
    ],
)
def test_each_bad_field_is_named_with_what_was_expected(change: dict[str, object], expected: str) -> None:
    problems = validate_reading(reading(**change), NOW, LIMITS)

    assert isinstance(problems, list)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_missing_fields_are_all_reported_at_once() -> None:
    problems = validate_reading({"metrics": {"t": 1}}, NOW, LIMITS)

    assert problems == ["body.device_id: is required", "body.reading_id: is required", "body.ts: is required"]


def test_an_integer_reading_id_names_the_same_reading_as_its_string() -> None:
    result = validate_reading(reading(reading_id=7), NOW, LIMITS)

    assert isinstance(result, ValidReading)
    assert result.reading_id == "7"


def test_rfc3339_offsets_and_long_fractions_are_understood() -> None:
    assert parse_rfc3339("2024-05-01T14:00:00.123456789+02:00") == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert parse_rfc3339("2024-13-01T00:00:00Z") is None


def test_valid_items_of_a_batch_are_kept_beside_invalid_ones() -> None:
    body = [
        reading(reading_id="a"),
        reading(reading_id="b", metrics={"t": float("nan")}),
        "not an object",
        reading(reading_id="c", ts=None),
        reading(reading_id="a"),  # same device and reading id as item 0
    ]

    result = validate_batch(body, NOW, LIMITS)

    assert [r.reading_id for r in result.readings] == ["a"]
    assert [item.status for item in result.items] == ["accepted", "rejected", "rejected", "rejected", "duplicate"]
    assert result.items[1].errors == ("items[1].metrics.t: must be a finite number, got NaN",)
    assert result.items[2].errors == (
        "items[2]: must be an object with device_id, reading_id, ts and metrics, got a string",
    )
    assert result.items[3].errors == ("items[3].ts: is required",)
    assert (result.accepted, result.rejected) == (2, 3)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the batch is empty"),
        ([reading()] * (MAX_BATCH_ITEMS + 1), f"at most {MAX_BATCH_ITEMS} are accepted"),
        ("text", "must be a reading (object) or a list of readings, got a string"),
    ],
)
def test_a_body_that_is_no_reading_or_batch_is_refused_whole(body: object, message: str) -> None:
    with pytest.raises(BodyShapeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_batch(body, NOW, LIMITS)
