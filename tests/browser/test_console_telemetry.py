"""The console's telemetry pages in a real browser (headless Debian chromium) on the local stack: readings posted to
the telemetry-ingest API become windows, and a device's chart draws a point per window with its alerts marked,
updating itself without a reload as more readings are counted. Screenshots: .local/screenshots/console-telemetry*.png.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By
from waiting import wait_for

METRIC = "temperature"


@pytest.fixture
def console(clean_stack: dict[str, Any]) -> str:
    return clean_stack["services"]["console"]


def _post(stack: dict[str, Any], device: str, reading_id: str, ts: datetime, value: float) -> None:
    body = {"device_id": device, "reading_id": reading_id, "ts": ts.isoformat(), "metrics": {METRIC: value}}
    answer = requests.post(f"{stack['services']['telemetry-ingest']}/telemetry", json=body, timeout=30)
    assert answer.status_code == 202, answer.text


def _windows(db: Any, device: str) -> list[dict[str, Any]]:
    windows = db.collection("telemetry-devices").document(device).collection("metrics").document(METRIC)
    return [s.to_dict() for s in windows.collection("windows").stream()]


def _points(browser: Any) -> list[dict[str, float]]:
    circles = browser.find_elements(By.CSS_SELECTOR, f'section.chart[data-metric="{METRIC}"] circle.point')
    return [{key: float(c.get_attribute(f"data-{key}")) for key in ("min", "mean", "max", "count")} for c in circles]


def test_the_device_list_says_plainly_when_there_is_none(browser: Any, console: str) -> None:
    browser.get(f"{console}/telemetry")

    assert browser.find_element(By.ID, "no-devices").text.startswith("No devices yet: no readings have been counted.")


def test_a_device_chart_draws_its_windows_and_alerts_and_updates_itself(
    browser: Any, screenshot: Any, console: str, db: Any, clean_stack: dict[str, Any]
) -> None:
    device = f"dev-chart-{uuid.uuid4().hex[:6]}"
    db.collection("telemetry-thresholds").document(device).set({"metrics": {METRIC: {"above": 30}}})
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3) + timedelta(seconds=10)
    _post(clean_stack, device, "r1", base, 20.0)
    _post(clean_stack, device, "r2", base + timedelta(seconds=20), 24.0)
    wait_for(lambda: [w["count"] for w in _windows(db, device)] == [2], seconds=30, what="the first window counted")

    browser.get(f"{console}/telemetry")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-device="{device}"]')
    assert f"{METRIC} 24" in row.text
    screenshot("console-telemetry")
    row.find_element(By.LINK_TEXT, device).click()

    assert browser.find_element(By.TAG_NAME, "h1").text == f"Device {device}"
    assert _points(browser) == [{"min": 20.0, "mean": 22.0, "max": 24.0, "count": 2.0}]
    assert browser.find_elements(By.CSS_SELECTOR, "g.alert") == []
    browser.execute_script("window.__sameDocument = true")  # a reload would lose it

    _post(clean_stack, device, "r3", base + timedelta(minutes=1), 31.5)  # crosses 30: raised
    _post(clean_stack, device, "r4", base + timedelta(minutes=2), 28.0)  # back under: cleared

    marks = wait_for(
        lambda: len(_points(browser)) == 3 and browser.find_elements(By.CSS_SELECTOR, "svg g.alert"),
        seconds=60,
        what="the new windows and the alerts drawn without a reload",
    )
    assert [m.get_attribute("data-state") for m in marks] == ["raised", "cleared"]
    assert [p["mean"] for p in _points(browser)] == [22.0, 31.5, 28.0]
    circles = browser.find_elements(By.CSS_SELECTOR, "circle.point")
    xs = [float(c.get_attribute("cx")) for c in circles]
    ys = [float(c.get_attribute("cy")) for c in circles]
    assert xs == sorted(xs) and ys[1] < ys[2] < ys[0]  # later to the right; higher values higher up
    raised_x = float(marks[0].find_element(By.TAG_NAME, "line").get_attribute("x1"))
    assert xs[0] < raised_x < xs[2]
    assert browser.find_elements(By.CSS_SELECTOR, "svg line.threshold")
    assert browser.execute_script("return window.__sameDocument === true")
    screenshot("console-telemetry-device")
