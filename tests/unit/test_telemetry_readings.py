"""Telemetry reading identity: duplicates recognisable downstream, retried requests make the same events."""

from __future__ import annotations

from datetime import UTC, datetime

from eventkit.catalog import CATALOG
from eventkit.catalog.telemetry import TELEMETRY_READINGS
from telemetry.readings import event_id, events_per_device, reading_key
from telemetry.validation import ValidReading

TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def r(device: str, reading_id: str) -> ValidReading:
    return ValidReading(device, reading_id, TS, {"t": 1.0})


def test_a_reading_key_depends_on_device_and_reading_id_only() -> None:
    assert reading_key("d1", "r1") == reading_key("d1", "r1")
    assert len({reading_key("d1", "r1"), reading_key("d2", "r1"), reading_key("d1", "r2")}) == 3
    assert reading_key("d1", "a\0b") != reading_key("d1\0a", "b")


def test_the_same_request_in_another_order_makes_the_same_events() -> None:
    first = list(events_per_device([r("d1", "a"), r("d2", "x"), r("d1", "b")]))
    again = list(events_per_device([r("d1", "b"), r("d1", "a"), r("d2", "x")]))

    assert [(e.device_id, e.event_id) for e in first] == [(e.device_id, e.event_id) for e in again]
    assert [e.device_id for e in first] == ["d1", "d2"]
    assert first[0].event_id == event_id("d1", ["b", "a"])


def test_many_readings_of_one_device_are_split_into_bounded_events() -> None:
    events = list(events_per_device([r("d1", f"{n:03d}") for n in range(250)], max_per_event=100))

    assert [len(e.readings) for e in events] == [100, 100, 50]
    assert len({e.event_id for e in events}) == 3


def test_event_data_matches_the_catalog_model() -> None:
    (event,) = events_per_device([r("d1", "a")])

    model = CATALOG.validate(TELEMETRY_READINGS, event.data())

    assert model.device_id == "d1"
    assert model.readings[0].ts == TS
