"""The consumer's routing, ledger and outcome logic on the in-memory stores (eventkit.memory): no emulator.

The same logic runs on Firestore in tests/integration/test_consumer_outcomes.py and test_hot_documents.py.
"""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask
import pytest

from eventkit import Consumer, DomainEvent, HandlerContext, PermanentError, RetryableError
from eventkit.catalog import CATALOG, ORDER_CONFIRMED, ORDER_PLACED
from eventkit.events import encode_for_pubsub, new_event
from eventkit.memory import MemoryDocuments, Published, memory_stores

ORDER = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 100}],
    "total": 100,
    "currency": "EUR",
}
CONFIRMED = {"order_id": "o-1", "customer_id": "c-1", "total": 100, "currency": "EUR"}
ENVIRON = {"GOOGLE_CLOUD_PROJECT": "p", "TOPIC_ORDER_EVENTS": "order-events"}


def consumer_with(published: Published | None = None) -> Consumer:
    return Consumer("unit", topics=["order-events"], environ=ENVIRON, stores=memory_stores(published))


def push(consumer: Consumer, event: DomainEvent | None = None, *, body: bytes | None = None) -> tuple[dict, int]:
    if body is None:
        data, attributes = encode_for_pubsub(event or new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests"))
        message = {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": "m-1"}
        body = json.dumps({"message": message, "subscription": "projects/p/subscriptions/s"}).encode()
    with flask.Flask("unit").test_request_context("/", method="POST", data=body, content_type="application/json"):
        text, status, _ = consumer.handle(flask.request)
    return json.loads(text), status


def documents(consumer: Consumer) -> MemoryDocuments:
    return consumer.db


def test_a_handled_event_commits_its_writes_with_the_ledger_entry_and_a_redelivery_is_a_duplicate() -> None:
    consumer = consumer_with()

    @consumer.on(ORDER_PLACED)
    def reserve(event: DomainEvent, ctx: HandlerContext) -> None:
        ref = ctx.db.collection("reservations").document(event.data.order_id)  # type: ignore[attr-defined]
        ctx.transaction.set(ref, {"count": (ctx.get(ref).to_dict() or {}).get("count", 0) + 1})

    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests")
    first, second = push(consumer, event), push(consumer, event)

    assert (first[0]["status"], first[1]) == ("processed", 200)
    assert (second[0]["status"], second[1]) == ("duplicate", 200)
    assert documents(consumer).read("reservations/o-1").to_dict() == {"count": 1}
    assert consumer.ledger.get("unit", event.id) is not None


def test_a_type_without_a_route_is_ignored_and_acknowledged() -> None:
    consumer = consumer_with()
    answer, status = push(consumer, new_event(CATALOG, ORDER_CONFIRMED, CONFIRMED, source="//tests"))
    assert (answer["status"], answer["reason"], status) == ("ignored", "not_handled", 200)


@pytest.mark.parametrize(
    ("raised", "status", "http"),
    [
        (PermanentError("bad input", reason="bad_input"), "rejected", 200),
        (RetryableError("busy"), "retry", 503),
        (ConnectionError("reset"), "retry", 503),
        (KeyError("a bug"), "error", 500),
    ],
)
def test_what_a_handler_raises_decides_the_answer_and_nothing_it_wrote_commits(
    raised: Exception, status: str, http: int
) -> None:
    consumer = consumer_with()

    @consumer.on(ORDER_PLACED)
    def failing(event: DomainEvent, ctx: HandlerContext) -> None:
        ctx.transaction.set(ctx.db.collection("effects").document("x"), {"written": True})
        raise raised

    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests")
    answer, code = push(consumer, event)

    assert (answer["status"], code) == (status, http)
    assert documents(consumer).paths() == []  # no effect and no ledger entry: a redelivery runs again
    failures = consumer.failures.records  # type: ignore[attr-defined]
    if status == "rejected":
        assert answer["failure_id"] in failures and failures[answer["failure_id"]].event_id == event.id
        assert failures[answer["failure_id"]].reason == "bad_input"
    else:
        assert failures == {} and "failure_id" not in answer


def test_an_unreadable_body_is_rejected_and_recorded_with_its_bytes() -> None:
    consumer = consumer_with()
    answer, code = push(consumer, body=b'{"message": {"data": "%%%"}}')

    assert (answer["status"], answer["reason"], code) == ("rejected", "malformed_delivery", 200)
    assert consumer.failures.records[answer["failure_id"]].body == b'{"message": {"data": "%%%"}}'  # type: ignore[attr-defined]


def test_a_rejection_that_cannot_be_recorded_asks_for_redelivery(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = consumer_with()

    def unavailable(failure: Any) -> str:
        raise ConnectionError("failures store down")

    monkeypatch.setattr(consumer.failures, "record", unavailable)
    answer, code = push(consumer, body=b"not json")
    assert (answer["status"], answer["reason"], code) == ("retry", "failure_not_recorded", 503)


def test_emitted_events_are_published_after_the_commit_with_ids_a_redelivery_reproduces() -> None:
    published = Published()
    consumer = consumer_with(published)

    @consumer.on(ORDER_PLACED)
    def confirm(event: DomainEvent, ctx: HandlerContext) -> None:
        ctx.emit("order-events", ORDER_CONFIRMED, CONFIRMED, subject="orders/o-1")

    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests")
    push(consumer, event)
    push(consumer, event)  # a duplicate: nothing left unsent, nothing published again

    assert [(topic, attrs["ce-type"]) for topic, _, attrs, _ in published.messages] == [
        ("projects/p/topics/order-events", ORDER_CONFIRMED)
    ]
    entry = documents(consumer).read(f"outbox/{published.messages[0][2]['ce-id']}").to_dict() or {}
    assert entry["sent"] is True and entry["cause"] == f"unit/{event.id}"


def test_a_publish_that_failed_after_the_commit_is_retried_by_the_redelivery() -> None:
    sent: list[str] = []
    failing = [True]

    def flaky_send(topic: str, data: bytes, attributes: dict[str, str], **_: Any) -> str:
        if failing[0]:
            raise RetryableError("pubsub down")
        sent.append(attributes["ce-id"])
        return "1"

    consumer = consumer_with()
    consumer.outbox.send = flaky_send

    @consumer.on(ORDER_PLACED)
    def confirm(event: DomainEvent, ctx: HandlerContext) -> None:
        ctx.emit("order-events", ORDER_CONFIRMED, CONFIRMED)

    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests")
    assert push(consumer, event)[0]["status"] == "retry"  # committed, not yet published: 503
    failing[0] = False
    assert push(consumer, event)[0]["status"] == "duplicate"  # the redelivery publishes what was left
    assert len(sent) == 1


def test_transact_and_side_effect_once_guard_work_outside_the_ledger_transaction() -> None:
    consumer = consumer_with()
    effects: list[str] = []

    @consumer.on(ORDER_PLACED, exactly_once=False)
    def charge(event: DomainEvent, ctx: HandlerContext) -> None:
        with ctx.side_effect_once(f"{event.id}:mail") as run:
            if run:
                effects.append("mail")
        ctx.transact(lambda c: c.transaction.set(c.db.collection("charges").document("o-1"), {"ok": True}))

    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests")
    first, second = push(consumer, event), push(consumer, event)

    assert (first[0]["status"], second[0]["status"]) == ("processed", "duplicate")
    assert effects == ["mail"] and documents(consumer).read("charges/o-1").exists


def test_transact_under_a_named_key_is_once_per_key_with_its_own_event_ids() -> None:
    published = Published()
    consumer = consumer_with(published)
    version = ["v1"]

    @consumer.on(ORDER_PLACED, exactly_once=False)
    def render(event: DomainEvent, ctx: HandlerContext) -> None:
        def write(c: HandlerContext) -> None:
            ref = c.db.collection("renders").document(version[0])
            c.transaction.set(ref, {"count": (c.get(ref).to_dict() or {}).get("count", 0) + 1})
            c.emit("order-events", ORDER_CONFIRMED, CONFIRMED)

        ctx.transact(write, key=f"{ctx.delivery.key}@{version[0]}")

    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests")
    statuses = [push(consumer, event)[0]["status"], push(consumer, event)[0]["status"]]
    version[0] = "v2"  # the same delivery, under new settings: done again, once
    statuses += [push(consumer, event)[0]["status"], push(consumer, event)[0]["status"]]

    assert statuses == ["processed", "duplicate", "processed", "duplicate"]
    counts = [documents(consumer).read(f"renders/{v}").to_dict()["count"] for v in ("v1", "v2")]
    assert counts == [1, 1]
    ids = [attributes["ce-id"] for _, _, attributes, _ in published.messages]
    assert len(ids) == 2 and len(set(ids)) == 2  # a new key makes new event ids: downstream sees a new event
    causes = [documents(consumer).read(f"outbox/{event_id}").to_dict()["cause"] for event_id in ids]
    assert causes == [f"unit/{event.id}@v1", f"unit/{event.id}@v2"]


def test_a_key_reused_for_another_payload_is_rejected() -> None:
    consumer = consumer_with()
    consumer.on(ORDER_PLACED)(lambda event, ctx: None)
    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests")
    push(consumer, event)

    reused = new_event(CATALOG, ORDER_PLACED, {**ORDER, "total": 999}, source="//tests", event_id=event.id)
    answer, code = push(consumer, reused)
    assert (answer["status"], answer["reason"], code) == ("rejected", "idempotency_key_reused", 200)


def test_the_handler_api_says_when_a_call_needs_the_transaction() -> None:
    consumer = consumer_with()

    @consumer.on(ORDER_PLACED, exactly_once=False)
    def outside(event: DomainEvent, ctx: HandlerContext) -> None:
        ctx.get(ctx.db.collection("x").document("y"))

    outcome = consumer.process(_delivery(new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests")))
    assert outcome.status == "error" and "exactly_once=True or use transact()" in (outcome.message or "")


def test_one_delivery_takes_its_locks_once_and_concurrent_duplicates_queue() -> None:
    consumer = consumer_with()
    inside, most, guard = [0], [0], threading.Lock()

    @consumer.on(ORDER_PLACED, serialize_on=lambda event: ["products/SKU-1"])
    def reserve(event: DomainEvent, ctx: HandlerContext) -> None:
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        with guard:
            inside[0] -= 1

    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests")
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda _: push(consumer, event)[0]["status"], range(8)))
    assert statuses == ["duplicate"] * 7 + ["processed"] and most[0] == 1
    assert len(consumer._locks) == 0  # nothing left held or waiting


def _delivery(event: DomainEvent) -> Any:
    from eventkit.delivery import read_delivery

    data, attributes = encode_for_pubsub(event)
    message = {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": "m-1"}
    return read_delivery({"Content-Type": "application/json"}, json.dumps({"message": message}).encode(), CATALOG)


def test_a_client_without_the_private_names_is_told_apart_once(caplog: pytest.LogCaptureFixture) -> None:
    from eventkit import transactions

    class RenamedClient:  # a release that renamed what the read-begun transaction needs
        def transaction(self, max_attempts: int) -> object:
            return object()

    transactions._supported.pop(RenamedClient, None)
    assert transactions.read_begun_supported(RenamedClient()) is False
    assert transactions.read_begun_supported(RenamedClient()) is False
    said = [r for r in caplog.records if "public transaction API" in r.getMessage()]
    assert len(said) == 1 and "_firestore_api" in said[0].fields["missing"]  # type: ignore[attr-defined]
