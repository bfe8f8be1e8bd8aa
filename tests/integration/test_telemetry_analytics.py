"""The analytics handler in this process, on the Firestore emulator: exactly-once counting under duplicates that
arrive in different events and at the same time, and readings too old to count."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from firestore_calls import counts, record_firestore_calls
from push_request import push_request

from eventkit.catalog import CATALOG
from eventkit.catalog.telemetry import TELEMETRY_READINGS
from eventkit.events import encode_for_pubsub, new_event


@pytest.fixture
def telemetry(clean_stack: dict[str, Any], service_main: Callable[..., ModuleType]) -> ModuleType:
    """services/telemetry/main.py, loaded fresh."""
    return service_main("telemetry", TOPIC_TELEMETRY_ALERTS="telemetry-alerts")


def _deliver(module: ModuleType, readings: list[dict[str, Any]], device: str = "dev-1") -> dict[str, Any]:
    event = new_event(CATALOG, TELEMETRY_READINGS, {"device_id": device, "readings": readings}, source="//tests")
    data, attributes = encode_for_pubsub(event)
    envelope = {
        "message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": event.id},
        "subscription": "projects/shop-test/subscriptions/telemetry-analytics-telemetry",
    }
    with push_request(envelope) as request:
        body, status, _ = module.handle_event(request)
    assert status == 200, body
    return json.loads(body)


def _reading(n: int, value: float, ts: datetime | None = None) -> dict[str, Any]:
    ts = ts or datetime.now(UTC).replace(second=30, microsecond=0) - timedelta(minutes=2)
    return {"reading_id": f"r{n}", "ts": ts.isoformat(), "metrics": {"t": value}}


def _windows(db: Any, device: str = "dev-1") -> list[dict[str, Any]]:
    ref = db.collection("telemetry-devices").document(device).collection("metrics").document("t")
    return [snapshot.to_dict() for snapshot in ref.collection("windows").stream()]


def test_a_reading_repeated_in_other_events_counts_once(telemetry: ModuleType, db: Any) -> None:
    first = _deliver(telemetry, [_reading(1, 1.5), _reading(2, 2.5)])
    overlapping = _deliver(telemetry, [_reading(2, 2.5), _reading(3, 4.0)])
    only_old = _deliver(telemetry, [_reading(1, 1.5)])

    assert [first["status"], overlapping["status"], only_old["status"]] == ["processed"] * 3
    (window,) = _windows(db)
    assert (window["count"], window["sum"], window["min"], window["max"]) == (3, 8.0, 1.5, 4.0)


def test_overlapping_events_delivered_at_the_same_time_still_count_each_reading_once(
    telemetry: ModuleType, db: Any
) -> None:
    events = [[_reading(n, float(n)) for n in range(k, k + 10)] for k in range(0, 40, 5)]  # each overlaps the next

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda readings: _deliver(telemetry, readings), events))

    assert all(answer["status"] == "processed" for answer in answers)
    (window,) = _windows(db)
    assert window["count"] == 45
    assert window["sum"] == float(sum(range(45)))


def test_readings_older_than_retention_are_a_permanent_failure(telemetry: ModuleType, db: Any) -> None:
    old = datetime.now(UTC) - timedelta(days=2)

    all_old = _deliver(telemetry, [_reading(1, 1.0, old)])
    mixed = _deliver(telemetry, [_reading(2, 2.0, old), _reading(3, 3.0)])

    assert all_old["status"] == "rejected"
    assert all_old["reason"] == "reading_too_old"
    assert mixed["status"] == "processed"
    assert [w["count"] for w in _windows(db)] == [1]  # only the fresh reading of the mixed event
    failures = sorted(
        d.get("reason") for d in db.collection("failures").stream() if d.get("consumer") == "telemetry-analytics"
    )
    assert failures == ["reading_too_old", "reading_too_old"]


def test_stale_reading_in_a_mixed_event_names_it_in_the_failure_record(telemetry: ModuleType, db: Any) -> None:
    old = datetime.now(UTC) - timedelta(days=3)

    _deliver(telemetry, [_reading(7, 2.0, old), _reading(8, 3.0)])

    (record,) = [d.to_dict() for d in db.collection("failures").stream()]
    assert "1 readings of device dev-1 are older than the retention window" in record["error"]
    assert record["error"].endswith("r7")


def test_a_batch_reads_in_two_round_trips_and_commits_once(
    telemetry: ModuleType, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the transaction: the ledger entry with the device (serialize_on), then the readings' entries with
    their windows."""
    _deliver(telemetry, [_reading(1, 1.0)])  # builds the consumer and its client
    from telemetry import analytics  # the module the served target runs

    calls = record_firestore_calls(analytics.consumer().db, monkeypatch)
    assert _deliver(telemetry, [_reading(1, 1.0), _reading(2, 2.0), _reading(3, 3.0)])["status"] == "processed"

    reads = [call.documents for call in calls if call.method == "batch_get_documents" and call.in_transaction]
    assert len(reads) == 2, reads  # not counting the thresholds, read without locks
    assert "telemetry-devices/dev-1" in reads[0]
    assert len(reads[1]) == 3 + 1  # three readings' entries, their one window
    assert counts(calls)["commit"] >= 1  # the transaction's (and maybe a "sent" mark's)
    (window,) = _windows(db)
    assert window["count"] == 3  # reading 1 counted once, by the first delivery
