"""The console in a real browser (headless Debian chromium) on the local stack: the overview draws the topology,
a dead letter's markup is text and runs nothing, a replay through the buttons removes the record from the list and
publishes its message once, and a real consumer's dead letter, replayed, takes effect once. Each page is saved under
.local/screenshots/."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from console_support import (
    SCRIPT_ATTRIBUTE,
    SCRIPT_PAYLOAD,
    pull_all,
    put_record,
    readings_dead_letter,
    replay_target,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from waiting import wait_for, wait_until_acknowledged

from eventkit.failures import FAILURES_COLLECTION
from stack.topology import load_topology


@pytest.fixture
def console(clean_stack: dict[str, Any]) -> str:
    return clean_stack["services"]["console"]


def _records_listed(browser: Any) -> list[str]:
    return [row.get_attribute("data-record") for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-record]")]


def test_the_overview_draws_the_topology_with_what_waits(browser: Any, screenshot: Any, console: str, db: Any) -> None:
    topology = load_topology()
    put_record(db, subscription="projects/shop-test/subscriptions/payments-order-events")

    browser.get(console + "/")

    assert browser.find_element(By.TAG_NAME, "h1").text == "Overview"
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-subscription]")
    bus = {name for name, s in topology.subscriptions.items() if not topology.topics[s.topic].dead_letter}
    assert {row.get_attribute("data-subscription") for row in rows} == bus
    topics = {s.get_attribute("data-topic") for s in browser.find_elements(By.CSS_SELECTOR, "[data-topic]")}
    assert topics == set(topology.topics)
    services = browser.find_elements(By.CSS_SELECTOR, "tr[data-service]")
    assert {row.get_attribute("data-service") for row in services} == set(topology.services)
    recorder = browser.find_element(By.CSS_SELECTOR, 'tr[data-topic="payments-order-events-dead-letter"]')
    assert "deadletters" in recorder.text
    payments = browser.find_element(By.CSS_SELECTOR, 'tr[data-subscription="payments-order-events"]')
    cells = [cell.text for cell in payments.find_elements(By.TAG_NAME, "td")]
    assert cells[0].endswith("payments") and cells[1] == "payments-order-events-dead-letter"
    assert cells[2:] == ["0", "0", "1"]  # nothing processed, no failures recorded, one dead letter waiting
    assert "1 record waiting" in browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    screenshot("console-overview")


def test_a_dead_letters_script_markup_shows_as_text_and_runs_nothing(
    browser: Any, screenshot: Any, console: str, db: Any
) -> None:
    record_id = put_record(db, payload=SCRIPT_PAYLOAD, attributes={"x-note": SCRIPT_ATTRIBUTE})

    browser.get(f"{console}/failures/{record_id}")

    assert browser.find_element(By.ID, "payload").text == SCRIPT_PAYLOAD.decode()
    assert SCRIPT_ATTRIBUTE in browser.find_element(By.ID, "attributes").text
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == []
    screenshot("console-failure-detail")


def test_replaying_a_dead_letter_removes_it_from_the_list_and_publishes_once(
    browser: Any, screenshot: Any, console: str, db: Any, clean_stack: dict[str, Any]
) -> None:
    topic, subscription = replay_target(clean_stack["project"])
    record_id = put_record(db, topic=topic)
    other = put_record(db)

    browser.get(console + "/failures")
    assert set(_records_listed(browser)) == {record_id, other}
    screenshot("console-failures")

    # Keyboard only: focus the record's link and follow it, then the replay button, then confirm.
    link = browser.find_element(By.CSS_SELECTOR, f'tr[data-record="{record_id}"] a')
    link.send_keys(Keys.ENTER)
    wait_for(lambda: browser.current_url.endswith(f"/failures/{record_id}"), 10, "the record's page")
    browser.find_element(By.LINK_TEXT, "Replay…").send_keys(Keys.ENTER)
    wait_for(lambda: browser.current_url.endswith("/replay"), 10, "the confirmation")
    assert topic in browser.find_element(By.TAG_NAME, "main").text
    screenshot("console-confirm-replay")
    browser.find_element(By.ID, "confirm").send_keys(Keys.ENTER)

    done = wait_for(lambda: browser.find_elements(By.ID, "done"), 30, "the list after the replay")
    assert f"Replayed record {record_id}" in done[0].text
    assert _records_listed(browser) == [other]
    screenshot("console-after-replay")
    messages = wait_for(lambda: pull_all(subscription), 30, "the replayed message")
    assert [m.attributes["ce-id"] for m in messages] == [record_id]
    record = db.collection(FAILURES_COLLECTION).document(record_id).get()
    assert record.get("status") == "replayed" and record.get("replays") == 1

    # The browser's back button and a second confirmation: refused, nothing published again.
    browser.get(f"{console}/failures/{record_id}/replay")
    assert "Already dealt with" in browser.find_element(By.TAG_NAME, "h1").text
    screenshot("console-error-already-done")
    assert db.collection(FAILURES_COLLECTION).document(record_id).get().get("replays") == 1


def test_a_replayed_dead_letter_takes_effect_once_at_its_consumer(
    browser: Any, console: str, db: Any, clean_stack: dict[str, Any], service_log: Any
) -> None:
    """The dead letter of a real consumer (telemetry-analytics): replayed from the console to the topic of its
    subscription, the reading is counted once in the device's windows; a second confirmation publishes nothing."""
    device = f"dev-{uuid.uuid4().hex[:8]}"
    record_id = readings_dead_letter(db, clean_stack["project"], device)
    stats = f"{clean_stack['services']['telemetry-ingest']}/devices/{device}/stats"

    browser.get(f"{console}/failures/{record_id}/replay")
    assert "topic telemetry" in browser.find_element(By.TAG_NAME, "main").text
    browser.find_element(By.ID, "confirm").click()
    wait_for(lambda: browser.find_elements(By.ID, "done"), 30, "the list after the replay")
    assert record_id not in _records_listed(browser)

    record = db.collection(FAILURES_COLLECTION).document(record_id).get()
    (message_id,) = record.get("replay_message_ids")
    wait_until_acknowledged(service_log, "telemetry-analytics", [message_id])
    windows = requests.get(stats, timeout=10).json()["windows"]
    assert [(w["metric"], w["count"]) for w in windows] == [("temperature", 1)]

    browser.get(f"{console}/failures/{record_id}/replay")
    assert "Already dealt with" in browser.find_element(By.TAG_NAME, "h1").text
    assert db.collection(FAILURES_COLLECTION).document(record_id).get().get("replays") == 1


def test_an_empty_list_says_so(browser: Any, screenshot: Any, console: str, db: Any) -> None:
    browser.get(console + "/failures")
    assert browser.find_element(By.ID, "empty").text == "No records with status new."
    screenshot("console-failures-empty")
