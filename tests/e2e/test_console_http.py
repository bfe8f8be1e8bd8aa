"""The console over plain HTTP on the local stack: pages escape what records hold, and a state-changing request
is a POST from the console's own form (token, origin) or it is refused, changing nothing. The tests marked
``compose`` also run against the console's image under docker compose (it draws the topology.yaml it holds)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from console_support import SCRIPT_ATTRIBUTE, SCRIPT_PAYLOAD, pull_all, put_record, replay_target
from waiting import wait_for

from eventkit.failures import FAILURES_COLLECTION

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def console(clean_stack: dict[str, Any]) -> str:
    return clean_stack["services"]["console"]


def _status(db: Any, record_id: str) -> str:
    return db.collection(FAILURES_COLLECTION).document(record_id).get().get("status")


def _confirmation(session: requests.Session, console: str, record_id: str, action: str) -> str:
    page = session.get(f"{console}/failures/{record_id}/{action}", timeout=10)
    assert page.status_code == 200, page.text
    return TOKEN.search(page.text).group(1)


@pytest.mark.compose
def test_the_overview_names_every_subscription_of_the_topology(console: str) -> None:
    from stack.topology import load_topology

    page = requests.get(f"{console}/", timeout=10)

    assert page.status_code == 200
    drawn = set(re.findall(r'data-subscription="([^"]+)"', page.text))
    topology = load_topology()
    assert drawn == {n for n, s in topology.subscriptions.items() if not topology.topics[s.topic].dead_letter}
    assert "Nothing is waiting" in page.text


@pytest.mark.compose
def test_a_records_markup_is_shown_as_text(console: str, db: Any) -> None:
    record_id = put_record(db, payload=SCRIPT_PAYLOAD, attributes={"x-note": SCRIPT_ATTRIBUTE})

    page = requests.get(f"{console}/failures/{record_id}", timeout=10)

    assert page.status_code == 200
    assert "<script>window" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;window.__pwned" in page.text
    assert "&lt;img src=x onerror=" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_a_post_without_the_forms_token_changes_nothing(console: str, db: Any) -> None:
    record_id = put_record(db)
    session = requests.Session()
    _confirmation(session, console, record_id, "discard")  # the cookie is set; the token is not sent back

    refused = session.post(f"{console}/failures/{record_id}/discard", data={}, allow_redirects=False, timeout=10)

    assert refused.status_code == 403
    assert "token is missing or out of date" in refused.text
    assert _status(db, record_id) == "new"


def test_a_post_from_another_site_is_refused_even_with_the_token(console: str, db: Any) -> None:
    record_id = put_record(db)
    session = requests.Session()
    token = _confirmation(session, console, record_id, "discard")
    url = f"{console}/failures/{record_id}/discard"

    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = session.post(url, data={"csrf_token": token}, headers=headers, allow_redirects=False, timeout=10)
        assert refused.status_code == 403, headers
    assert _status(db, record_id) == "new"

    done = session.post(url, data={"csrf_token": token}, allow_redirects=False, timeout=10)
    assert done.status_code == 303 and done.headers["Location"].startswith("/failures?done=discarded")
    assert _status(db, record_id) == "discarded"


@pytest.mark.compose
def test_a_replay_posted_twice_publishes_once(console: str, db: Any, clean_stack: dict[str, Any]) -> None:
    topic, subscription = replay_target(clean_stack["project"])
    record_id = put_record(db, topic=topic)
    session = requests.Session()
    token = _confirmation(session, console, record_id, "replay")
    url = f"{console}/failures/{record_id}/replay"

    first = session.post(url, data={"csrf_token": token}, allow_redirects=False, timeout=30)
    second = session.post(url, data={"csrf_token": token}, allow_redirects=False, timeout=30)

    assert first.status_code == 303, first.text
    assert second.status_code == 409 and "replayed already" in second.text
    record = db.collection(FAILURES_COLLECTION).document(record_id).get()
    assert record.get("status") == "replayed" and record.get("replays") == 1
    messages = wait_for(lambda: pull_all(subscription), 30, "the replayed message")
    assert [m.attributes["ce-id"] for m in messages] == [record_id]
    assert len(record.get("replay_message_ids")) == 1  # the one publish, which the pull above received


def test_get_cannot_change_anything_and_unknown_pages_say_so(console: str, db: Any) -> None:
    refused = requests.delete(f"{console}/failures", timeout=10)
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET"
    assert requests.put(f"{console}/failures/r-1/replay", timeout=10).headers["Allow"] == "GET, POST"
    missing = requests.get(f"{console}/failures/no-such-record", timeout=10)
    assert missing.status_code == 404 and "There is no record no-such-record" in missing.text
    assert requests.get(f"{console}/failures?status=bogus", timeout=10).status_code == 400
    empty = requests.get(f"{console}/failures", timeout=10)
    assert empty.status_code == 200 and "No records with status new" in empty.text


def test_the_list_pages_newest_first(console: str, db: Any) -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [put_record(db, record_id=f"page-{i:03d}", last_seen=start + timedelta(minutes=i)) for i in range(55)]

    first = requests.get(f"{console}/failures", timeout=10).text
    shown = re.findall(r'data-record="([^"]+)"', first)
    assert shown == list(reversed(ids))[:50]
    older = re.search(r'href="(/failures\?[^"]*after=[^"]+)"', first).group(1).replace("&amp;", "&")
    rest = re.findall(r'data-record="([^"]+)"', requests.get(f"{console}{older}", timeout=10).text)
    assert rest == list(reversed(ids))[50:]
