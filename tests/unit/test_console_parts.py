"""The console's pure parts: its view of topology.yaml agrees with the stack's loader, the cross-site request
guard refuses what it must, and a payload is decoded for reading."""

from __future__ import annotations

from base64 import b64encode
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from console import csrf
from console.pages import decoded_payload, render
from console.topology_view import find_topology, load_view
from stack.topology import load_topology

TOKEN = "t" * 40


def test_the_view_of_the_topology_is_the_stacks() -> None:
    topology = load_topology()
    view = load_view(find_topology())

    assert [s.name for s in view.services] == list(topology.services)
    assert {s.name: s.publishes for s in view.services} == {n: s.publishes for n, s in topology.services.items()}
    assert {t.name: t.dead_letter for t in view.topics} == {n: t.dead_letter for n, t in topology.topics.items()}
    assert {s.name: (s.topic, s.push_to, s.dead_letter_topic) for s in view.subscriptions} == {
        n: (s.topic, s.push_to, s.dead_letter_topic) for n, s in topology.subscriptions.items()
    }
    assert view.topic_of("payments-order-events") == "order-events"
    assert view.topic_of("no-such-subscription") is None


def _post(headers: dict[str, str] | None = None, cookie: str | None = TOKEN, field: str | None = TOKEN) -> Any:
    builder = EnvironBuilder(
        method="POST",
        base_url="http://console.local",
        path="/failures/r1/replay",
        headers=headers or {},
        data={csrf.FIELD: field} if field is not None else {},
    )
    if cookie is not None:
        builder.headers["Cookie"] = f"{csrf.COOKIE}={cookie}"
    return Request(builder.get_environ())


def test_a_same_origin_post_with_its_token_passes() -> None:
    csrf.check(_post({"Origin": "http://console.local", "Sec-Fetch-Site": "same-origin"}))
    csrf.check(_post({"Origin": "http://console.local"}))  # a browser without fetch metadata
    # Behind `gcloud run services proxy` the browser's origin is localhost, the Host header the service's.
    csrf.check(_post({"Origin": "http://localhost:8104", "Sec-Fetch-Site": "same-origin"}))


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        (_post(field=None), "token is missing"),
        (_post(cookie=None), "token is missing"),
        (_post(field="u" * 40), "token is missing"),
        (_post(cookie="short", field="short"), "token is missing"),
        (_post({"Origin": "https://evil.example"}), "came from https://evil.example"),
        (_post({"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}), "another site"),
        (_post({"Sec-Fetch-Site": "cross-site"}), "another site"),
        (_post({"Sec-Fetch-Site": "same-site"}), "another site"),
    ],
    ids=[
        "no field",
        "no cookie",
        "other token",
        "malformed token",
        "other origin",
        "other origin, cross-site",
        "cross-site",
        "same-site",
    ],
)
def test_a_post_from_elsewhere_or_without_the_token_is_refused(request_: Any, why: str) -> None:
    with pytest.raises(csrf.CrossSiteRequest, match=why):
        csrf.check(request_)


def test_the_cookie_is_strict_and_http_only_and_secure_behind_https() -> None:
    request = Request(EnvironBuilder(headers={"X-Forwarded-Proto": "https"}).get_environ())
    token = csrf.token_of(request)
    assert len(token) >= 32
    assert csrf.cookie_header(request, token)["Set-Cookie"] == (
        f"{csrf.COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Secure"
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"text": '{"b": 1, "a": "<x>"}'}, ("JSON", '{\n  "a": "<x>",\n  "b": 1\n}')),
        ({"text": "plain <b>text</b>"}, ("text", "plain <b>text</b>")),
        ({"base64": b64encode("é".encode()).decode()}, ("text", "é")),
        ({"base64": b64encode(b"\xff\xfe").decode()}, ("binary (base64)", "//4=")),
    ],
)
def test_a_payload_is_decoded_for_reading(payload: dict[str, str], expected: tuple[str, str]) -> None:
    assert decoded_payload({"payload": payload}) == expected


def test_templates_escape_what_they_are_given() -> None:
    body, code, headers = render("error.html", 404, title="<b>t</b>", message="<script>alert(1)</script>", page="")
    assert code == 404 and "<script>alert" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
