"""End to end on the local stack: devices → telemetry-ingest (HTTP) → topic telemetry → Pub/Sub emulator push →
telemetry-analytics → Firestore windows, and TelemetryAlert events on telemetry-alerts."""

from __future__ import annotations

import json
import math
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from google.cloud import pubsub_v1
from sent_mail import Mailbox
from waiting import wait_for, wait_until_acknowledged

from eventkit.catalog.telemetry import TELEMETRY_ALERT


def _ingest(stack: dict[str, Any]) -> str:
    return stack["services"]["telemetry-ingest"]


def _post(stack: dict[str, Any], body: Any, http: Any = requests) -> requests.Response:
    """POST /telemetry, through ``http`` (``requests``, or a Session that keeps its connection)."""
    # json.dumps, not requests' json=: devices do send the non-standard literal NaN, and so must the tests.
    data = json.dumps(body)
    return http.post(f"{_ingest(stack)}/telemetry", data=data, headers={"Content-Type": "application/json"}, timeout=30)


def _stats(stack: dict[str, Any], device: str, **params: str) -> dict[str, Any]:
    response = requests.get(f"{_ingest(stack)}/devices/{device}/stats", params=params, timeout=30)
    return response.json() if response.status_code == 200 else {}


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _tap(stack: dict[str, Any], topic: str) -> Iterator[str]:
    """A pull subscription on ``topic``, created before the test publishes anything: what the topic carried."""
    subscriber = pubsub_v1.SubscriberClient()
    name = f"projects/{stack['project']}/subscriptions/test-{topic}-{uuid.uuid4().hex[:8]}"
    subscriber.create_subscription(name=name, topic=stack["topics"][topic])
    yield name
    subscriber.delete_subscription(subscription=name)


@pytest.fixture
def alerts_subscription(clean_stack: dict[str, Any]) -> Iterator[str]:
    yield from _tap(clean_stack, "telemetry-alerts")


@pytest.fixture
def readings_subscription(clean_stack: dict[str, Any]) -> Iterator[str]:
    yield from _tap(clean_stack, "telemetry")


def _pull(subscription: str) -> list[dict[str, Any]]:
    """The messages waiting on ``subscription`` (acknowledged): ce-type, ce-subject, message id and data."""
    subscriber = pubsub_v1.SubscriberClient()
    response = subscriber.pull(subscription=subscription, max_messages=50, timeout=5, return_immediately=True)
    if response.received_messages:
        subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
    return [
        {
            "type": m.message.attributes["ce-type"],
            "subject": m.message.attributes.get("ce-subject"),
            "message_id": m.message.message_id,
            **json.loads(m.message.data),
        }
        for m in response.received_messages
    ]


@pytest.mark.compose
def test_thousand_shuffled_readings_with_duplicates_give_exact_window_statistics(clean_stack: dict[str, Any]) -> None:
    rng = random.Random(5)
    devices = [f"dev-{n}" for n in range(10)]
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    unique = [
        {
            "device_id": devices[n % 10],
            "reading_id": f"r-{n}",
            # spread over ~25 minutes, so readings of one device fall into many windows
            "ts": _iso(start + timedelta(seconds=rng.uniform(0, 1500))),
            "metrics": {"temperature": rng.uniform(-20, 45), "humidity": rng.uniform(0, 100)},
        }
        for n in range(1000)
    ]
    duplicates = [dict(reading) for reading in rng.sample(unique, 100)]  # 10%: the very same readings again
    stream = unique + duplicates
    rng.shuffle(stream)

    verdicts = [_post(clean_stack, stream[i : i + 100]) for i in range(0, len(stream), 100)]

    assert [r.status_code for r in verdicts] == [202] * 11
    assert sum(r.json()["accepted"] for r in verdicts) == 1100  # a duplicate is accepted, and counted once
    reference: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for reading in unique:
        ts = datetime.fromisoformat(reading["ts"])
        window = _iso(ts.replace(second=0, microsecond=0))
        for metric, value in reading["metrics"].items():
            reference[(reading["device_id"], metric, window)].append(value)
    span = {"from": _iso(start - timedelta(minutes=1)), "to": _iso(start + timedelta(minutes=40))}

    def windows_when_complete() -> dict[tuple[str, str, str], dict[str, Any]] | None:
        found = {}
        for device in devices:
            for window in _stats(clean_stack, device, **span).get("windows", []):
                found[(device, window["metric"], window["start"])] = window
        # Every metric complete: the stats endpoint queries one metric after another, so a poll can catch a
        # batch's commit between its humidity and its temperature windows.
        totals = [
            sum(w["count"] for key, w in found.items() if key[1] == metric) for metric in ("temperature", "humidity")
        ]
        return found if min(totals) >= 1000 else None

    found = wait_for(windows_when_complete, seconds=90, what="1,000 readings counted")

    assert set(found) == set(reference)
    for key, values in reference.items():
        window = found[key]
        expected = (len(values), min(values), max(values), math.fsum(values), math.fsum(values) / len(values))
        assert (window["count"], window["min"], window["max"], window["sum"], window["mean"]) == expected, key


def test_crossing_a_threshold_and_returning_raises_exactly_two_alerts(
    clean_stack: dict[str, Any],
    db: Any,
    alerts_subscription: str,
    readings_subscription: str,
    mailbox: Mailbox,
    service_log: Callable[[str], str],
) -> None:
    device = f"dev-alert-{uuid.uuid4().hex[:6]}"
    db.collection("telemetry-thresholds").document(device).set({"metrics": {"temperature": {"above": 30}}})
    start = datetime.now(UTC) - timedelta(minutes=5)
    values = [21.0, 24.0, 31.5, 35.0, 38.0, 33.0, 36.0, 28.0, 22.0]

    for n, value in enumerate(values):  # one request per reading, as a device sends them
        reading = {"device_id": device, "reading_id": f"r{n}", "ts": _iso(start + timedelta(seconds=10 * n))}
        assert _post(clean_stack, {**reading, "metrics": {"temperature": value}}).status_code == 202
        wait_for(
            lambda n=n: (
                _stats(clean_stack, device).get("latest", {}).get("temperature", {}).get("reading_id") == f"r{n}"
            ),
            seconds=30,
            what=f"reading r{n} processed",
        )
    # The device retries an over-threshold reading: still no new crossing.
    retried = {"device_id": device, "reading_id": "r3", "ts": _iso(start + timedelta(seconds=30))}
    assert _post(clean_stack, {**retried, "metrics": {"temperature": 35.0}}).status_code == 202

    # Ten requests, ten events on the telemetry topic; analytics is done with the device once it has answered
    # each of them: every alert it raised is then in the outbox, written with the reading that crossed.
    readings: list[dict[str, Any]] = []
    wait_for(
        lambda: (
            readings.extend(m for m in _pull(readings_subscription) if m["subject"] == device)
            or len(readings) >= len(values) + 1
        ),
        seconds=30,
        what="the device's ten readings events",
    )
    wait_until_acknowledged(service_log, "telemetry-analytics", [m["message_id"] for m in readings])
    outbox = wait_for(lambda: _all_sent(db, device), seconds=30, what="the alerts published")
    assert sorted(entry["event_type"] for entry in outbox) == [TELEMETRY_ALERT] * 2
    published = {entry["message_id"] for entry in outbox}
    alerts: list[dict[str, Any]] = []
    wait_for(
        lambda: alerts.extend(_pull(alerts_subscription)) or {a["message_id"] for a in alerts} >= published,
        seconds=30,
        what="the two alerts pulled",
    )
    alerts.extend(_pull(alerts_subscription))  # anything published with them

    assert [(a["type"], a["state"], a["reading_id"], a["value"]) for a in alerts] == [
        (TELEMETRY_ALERT, "raised", "r2", 31.5),
        (TELEMETRY_ALERT, "cleared", "r7", 28.0),
    ]
    assert all(a["device_id"] == device and a["threshold"] == 30 for a in alerts)
    assert _stats(clean_stack, device)["alerts"] == {"temperature": "normal"}
    # Each alert is recorded beside the device too, once: the history the console's chart marks.
    history = db.collection("telemetry-devices").document(device).collection("alerts").order_by("ts").stream()
    assert [(h.get("state"), h.get("reading_id"), h.get("value")) for h in history] == [
        ("raised", "r2", 31.5),
        ("cleared", "r7", 28.0),
    ]
    # ... and the notifications service mails each alert to the operators, once: it has answered both.
    wait_until_acknowledged(service_log, "notifications", published)
    mails = _alert_mails(mailbox, device)
    assert sorted(mail["Subject"] for mail in mails) == [
        f"Telemetry alert cleared: {device} temperature",
        f"Telemetry alert raised: {device} temperature",
    ]
    assert all(mail["To"] == "operations@example.com" for mail in mails)


def test_a_devices_requests_sent_back_to_back_move_its_alerts_in_the_order_sent(
    clean_stack: dict[str, Any], db: Any
) -> None:
    """Twenty requests, one reading each, each crossing the threshold, sent without waiting for the analytics: the
    subscription pushes the device's events one at a time in the order ingest published them (enable_message_ordering,
    ordering key = device). Unordered, the emulator pushes two at once, and a later reading handled first turns the
    earlier one into history: its crossing is never raised."""
    device = f"dev-order-{uuid.uuid4().hex[:6]}"
    db.collection("telemetry-thresholds").document(device).set({"metrics": {"temperature": {"above": 30}}})
    start = datetime.now(UTC) - timedelta(minutes=5)
    values = [31.5, 28.0] * 10
    last = f"r{len(values) - 1}"
    with requests.Session() as session:
        for n, value in enumerate(values):
            reading = {"device_id": device, "reading_id": f"r{n}", "ts": _iso(start + timedelta(seconds=n))}
            assert _post(clean_stack, {**reading, "metrics": {"temperature": value}}, session).status_code == 202

    alerts = db.collection("telemetry-devices").document(device).collection("alerts")
    history = wait_for(
        lambda: (
            [(h.get("state"), h.get("reading_id")) for h in alerts.order_by("ts").stream()]
            if _stats(clean_stack, device).get("latest", {}).get("temperature", {}).get("reading_id") == last
            else None
        ),
        seconds=60,
        what="the last reading processed",
    )
    assert history == [("raised" if n % 2 == 0 else "cleared", f"r{n}") for n in range(len(values))]
    assert _stats(clean_stack, device)["alerts"] == {"temperature": "normal"}


def _all_sent(db: Any, device: str) -> list[dict[str, Any]]:
    """The device's outgoing events (its alerts, as the outbox holds them), once every one is published."""
    entries = [d.to_dict() for d in db.collection("outbox").stream()]
    mine = [entry for entry in entries if entry["attributes"].get("ce-subject") == device]
    return mine if all(entry["sent"] for entry in mine) else []


def _alert_mails(mailbox: Mailbox, device: str) -> list[Any]:
    return [m for m in mailbox.messages() if device in (m["Subject"] or "")]


def test_invalid_items_are_rejected_with_reasons_while_valid_ones_are_accepted(clean_stack: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    good = {"device_id": "dev-mixed", "ts": _iso(now - timedelta(seconds=5)), "metrics": {"temperature": 20.25}}
    batch = [
        {**good, "reading_id": "ok-1"},
        {**good, "reading_id": "nan", "metrics": {"temperature": float("nan")}},  # sent as the JSON literal NaN
        {**good, "reading_id": "text", "metrics": {"temperature": "warm"}},
        {**good, "reading_id": "future", "ts": _iso(now + timedelta(hours=2))},
        {"device_id": "dev-mixed", "reading_id": "missing"},
        {**good, "reading_id": "ok-2", "metrics": {"temperature": 21.75}},
    ]

    response = _post(clean_stack, batch)

    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 4)
    reasons = {item.get("reading_id"): item.get("errors", []) for item in body["items"]}
    assert reasons["ok-1"] == reasons["ok-2"] == []
    assert reasons["nan"] == ["items[1].metrics.temperature: must be a finite number, got NaN"]
    assert reasons["text"] == ["items[2].metrics.temperature: must be a finite number, got 'warm'"]
    assert reasons["future"][0].startswith("items[3].ts: is 7") and "in the future" in reasons["future"][0]
    assert reasons["missing"] == ["items[4].ts: is required", "items[4].metrics: is required"]
    stats = wait_for(
        lambda: (s := _stats(clean_stack, "dev-mixed")) and sum(w["count"] for w in s["windows"]) == 2 and s,
        seconds=30,
        what="the two valid readings counted",
    )
    assert sorted(w["sum"] for w in stats["windows"]) in ([42.0], [20.25, 21.75])


def test_bodies_that_are_not_a_batch_of_readings_get_one_json_error(clean_stack: dict[str, Any]) -> None:
    url = f"{_ingest(clean_stack)}/telemetry"
    ten_mb = b"[" + b" " * (10 * 1024 * 1024) + b"]"

    too_large = requests.post(url, data=ten_mb, headers={"Content-Type": "application/json"}, timeout=60)
    not_json = requests.post(url, data="temperature=20", headers={"Content-Type": "text/plain"}, timeout=30)
    malformed = requests.post(url, data="{nope", headers={"Content-Type": "application/json"}, timeout=30)
    all_invalid = _post(clean_stack, [{"device_id": "d", "reading_id": "1", "ts": "yesterday", "metrics": {"t": 1}}])

    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "payload_too_large"
    assert not_json.status_code == 415
    assert malformed.status_code == 400
    assert all_invalid.status_code == 422
    error = all_invalid.json()["error"]
    assert error["code"] == "no_valid_readings"
    assert error["details"][0]["errors"] == [
        "items[0].ts: must be an RFC 3339 timestamp like 2024-05-01T12:00:00Z, got 'yesterday'"
    ]


def test_stats_of_an_unknown_device_is_404_and_a_bad_range_is_422(clean_stack: dict[str, Any]) -> None:
    base = _ingest(clean_stack)

    unknown = requests.get(f"{base}/devices/nobody/stats", timeout=30)
    backwards = requests.get(
        f"{base}/devices/nobody/stats",
        params={"from": "2024-05-02T00:00:00Z", "to": "2024-05-01T00:00:00Z"},
        timeout=30,
    )

    assert unknown.status_code == 404
    assert backwards.status_code == 422
    assert backwards.json()["error"]["code"] == "invalid_query"


def test_simulator_command_drives_readings_into_the_analytics(clean_stack: dict[str, Any]) -> None:
    import subprocess
    import sys
    from pathlib import Path

    state_dir = Path(clean_stack["logs"]).parent
    result = subprocess.run(
        [sys.executable, "-m", "stack", "simulate", "--state-dir", str(state_dir), "--devices", "3",
         "--readings", "90", "--batch", "20", "--duplicates", "0.2", "--shuffle", "0.2", "--seed", "3", "--wait"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "rejected 0" in result.stdout
    assert "analytics counted all 90 unique readings" in result.stdout
