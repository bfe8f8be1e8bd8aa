"""The console's telemetry pages over plain HTTP on the local stack: what it cannot show is said plainly (an unknown
device, a device id that cannot be one, a range it does not offer), and a chart's live update is JSON whose markup
escapes what devices sent. Both also run against the console's image under docker compose."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.compose


@pytest.fixture
def console(clean_stack: dict[str, Any]) -> str:
    return clean_stack["services"]["console"]


def test_what_cannot_be_shown_is_said_plainly(console: str) -> None:
    unknown = requests.get(f"{console}/telemetry/dev-nobody", timeout=10)
    not_an_id = requests.get(f"{console}/telemetry/-x", timeout=10)
    bad_range = requests.get(f"{console}/telemetry/dev-nobody?minutes=7", timeout=10)
    posted = requests.post(f"{console}/telemetry", timeout=10)

    assert (
        unknown.status_code == 404 and "No readings from device &#39;dev-nobody&#39; have been counted" in unknown.text
    )
    assert not_an_id.status_code == 404 and "That is not a device id." in not_an_id.text
    assert bad_range.status_code == 400 and "minutes must be one of 15, 60, 360, 1440." in bad_range.text
    assert posted.status_code == 405 and posted.headers["Allow"] == "GET"


def test_a_charts_live_update_is_json_and_escapes_metric_names(console: str, db: Any) -> None:
    now = datetime.now(UTC)
    metric = "x<b>"  # not a metric name ingest accepts: written here as if it had been
    db.collection("telemetry-devices").document("dev-1").set(
        {"device_id": "dev-1", "last_seen": now, "latest": {metric: {"value": 1.0, "ts": now, "reading_id": "r"}}}
    )

    answer = requests.get(f"{console}/telemetry/dev-1/charts?minutes=60", timeout=10)

    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    html = json.loads(answer.text)["html"]
    assert "x&lt;b&gt;" in html and "x<b>" not in html
    assert "No windows of x&lt;b&gt; in the last 1 hour." in html
