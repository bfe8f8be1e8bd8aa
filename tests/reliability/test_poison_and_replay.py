"""A poison message: exactly max_delivery_attempts pushes, then the dead-letter topic, the recorder, and a replay
that the fixed consumer processes exactly once.

The consumer runs in this process (so its pushes can be counted); the dead-letter recorder is the stack's
``deadletters`` service (a container, under docker compose); the replay is `python -m dlq` as an operator runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from google.cloud import firestore, pubsub_v1
from reliability_support import (
    create_push_subscription,
    create_topic,
    delete_subscription,
    dlq_list,
    run_dlq,
    served,
    unique,
    wait_for,
)

from eventkit import Consumer, DomainEvent, HandlerContext
from eventkit.catalog import CATALOG, ORDER_PLACED
from eventkit.events import encode_for_pubsub, new_event
from eventkit.failure_records import Records
from eventkit.failures import FAILURES_COLLECTION

MAX_ATTEMPTS = 5
ORDER = {
    "order_id": "o-poison",
    "customer_id": "c-1",
    "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 100}],
    "total": 100,
    "currency": "EUR",
}


@pytest.mark.compose
def test_poison_message_is_dead_lettered_after_exactly_max_attempts_and_replayed_once(
    stack_runner: Any,
    clean_stack: dict[str, Any],
    db: Any,
    push_endpoint: Callable[[str], str],
    callback_host: str,
) -> None:
    project = clean_stack["project"]
    consumer = Consumer(unique("poison"), environ={"GOOGLE_CLOUD_PROJECT": project})
    broken = True

    @consumer.on(ORDER_PLACED)
    def place(event: DomainEvent, ctx: HandlerContext) -> None:
        if broken:
            raise RuntimeError("bug: this consumer cannot handle any order yet")
        ref = ctx.db.collection("effects").document(event.id)
        ctx.transaction.set(ref, {"count": firestore.Increment(1)}, merge=True)

    name = unique("poison")
    topic = create_topic(project, name)
    dead_letter_topic = create_topic(project, f"{name}-dead-letter")
    keep = pubsub_v1.SubscriberClient().create_subscription(
        request={"name": f"projects/{project}/subscriptions/{name}-dead-letter-pull", "topic": dead_letter_topic}
    )
    recorder = create_push_subscription(project, dead_letter_topic, f"deadletters-{name}", push_endpoint("deadletters"))
    event = new_event(CATALOG, ORDER_PLACED, ORDER, source="//tests/reliability")
    data, attributes = encode_for_pubsub(event)

    with served(consumer, callback_host) as server:
        source = create_push_subscription(
            project, topic, name, server.url, dead_letter_topic=dead_letter_topic, max_delivery_attempts=MAX_ATTEMPTS,
            backoff=(0, 1),
        )  # fmt: skip
        try:
            poison = pubsub_v1.PublisherClient().publish(topic, data, **attributes).result(timeout=30)

            # Dead-lettered: the recorder's record appears ...
            records = db.collection(FAILURES_COLLECTION)
            wait_for(lambda: len(list(records.stream())) == 1, 60, "the dead-letter record")
            # ... after exactly MAX_ATTEMPTS pushes: Pub/Sub forwards the message (and acknowledges it on the source
            # subscription) only once the last push was answered, and the record is written from the forwarded
            # copy, so the count is complete now. (That no push of it comes later is checked at the end, after
            # two more messages have gone through the same subscription.)
            assert server.messages[poison] == server.pushes == MAX_ATTEMPTS
            assert server.statuses == {500: MAX_ATTEMPTS}

            (snapshot,) = records.stream()
            record = snapshot.to_dict()
            assert record["kind"] == "dead_letter"
            assert record["status"] == "new"
            assert record["subscription"] == source
            assert record["topic"] == topic
            assert record["delivery_attempt"] == MAX_ATTEMPTS
            assert record["event_id"] == event.id
            assert record["attributes"] == attributes
            assert record["count"] == 1

            # The dead-letter topic's own pull subscription kept it too, once, with Pub/Sub's source attributes.
            pulled = pubsub_v1.SubscriberClient().pull(request={"subscription": keep.name, "max_messages": 10})
            assert len(pulled.received_messages) == 1
            kept = pulled.received_messages[0].message.attributes
            assert kept["CloudPubSubDeadLetterSourceDeliveryCount"] == str(MAX_ATTEMPTS)

            # `dlq list` shows it with its source subscription and delivery count.
            (listed,) = dlq_list(stack_runner.state_dir, "--subscription", name)
            assert (listed["id"], listed["kind"], listed["status"]) == (snapshot.id, "dead_letter", "new")
            assert (listed["subscription"], listed["delivery_count"]) == (name, MAX_ATTEMPTS)

            # The consumer is fixed; the operator replays: processed exactly once.
            broken = False
            replayed = run_dlq(stack_runner.state_dir, "replay", snapshot.id[:10])
            assert replayed.returncode == 0, replayed.stderr
            effect = db.collection("effects").document(event.id)
            wait_for(lambda: effect.get().exists, 30, "the replayed event's effect")
            assert records.document(snapshot.id).get().get("status") == "replayed"

            # A second replay of the same record (same ce-id) is a duplicate: no second effect.
            again = run_dlq(stack_runner.state_dir, "replay", snapshot.id)
            assert again.returncode == 0, again.stderr
            wait_for(lambda: server.statuses[200] == 2, 30, "the second replay's push")
            assert effect.get().get("count") == 1
            assert server.pushes == MAX_ATTEMPTS + 2
            assert server.messages[poison] == MAX_ATTEMPTS  # the replays were new messages; the poison came no more
            assert len(list(records.stream())) == 1  # nothing dead-lettered again
        finally:
            for subscription in (source, recorder, keep.name):
                delete_subscription(subscription)


def _dead_letters(db: Any, project: str, topic: str, name: str, count: int) -> Any:
    """``count`` replayable dead letters ``rec-<i>-<name>`` of subscription ``<name>-sub`` (ce-id ``evt-<i>``),
    status new; returns the failures collection."""
    records = db.collection(FAILURES_COLLECTION)
    for index in range(count):
        records.document(f"rec-{index}-{name}").set(
            {
                "kind": "dead_letter",
                "status": "new",
                "subscription": f"projects/{project}/subscriptions/{name}-sub",
                "topic": topic,
                "attributes": {"ce-id": f"evt-{index}"},
                "payload": {"text": "{}"},
                "replayable": True,
                "last_seen": firestore.SERVER_TIMESTAMP,
            }
        )
    return records


def test_recount_counts_records_written_before_the_counters_and_discard_keeps_them(
    stack_runner: Any, clean_stack: dict[str, Any], db: Any
) -> None:
    project, name = clean_stack["project"], unique("recount")
    path = f"projects/{project}/subscriptions/{name}-sub"
    _dead_letters(db, project, create_topic(project, name), name, 3)  # as a release without the counters wrote them
    records = Records(db)
    assert records.waiting([path]).total == 0

    result = run_dlq(stack_runner.state_dir, "recount")

    assert result.returncode == 0, result.stderr
    assert [f"{name}-sub", "dead_letter", "3"] in [line.split() for line in result.stdout.splitlines()]
    assert "counters set: 3 records waiting" in result.stdout
    assert records.waiting([path]).by_subscription[(path, "dead_letter")] == 3
    assert run_dlq(stack_runner.state_dir, "discard", f"rec-0-{name}").returncode == 0
    assert records.waiting([path]).by_subscription[(path, "dead_letter")] == 2


def test_discarded_record_is_not_replayed_by_replay_all(
    stack_runner: Any, clean_stack: dict[str, Any], db: Any
) -> None:
    project = clean_stack["project"]
    name = unique("discard")
    topic = create_topic(project, name)
    seen = pubsub_v1.SubscriberClient().create_subscription(
        request={"name": f"projects/{project}/subscriptions/{name}-pull", "topic": topic}
    )
    records = _dead_letters(db, project, topic, name, 2)

    assert run_dlq(stack_runner.state_dir, "discard", f"rec-0-{name}").returncode == 0
    result = run_dlq(stack_runner.state_dir, "replay", "--all", "--subscription", f"{name}-sub")

    assert result.returncode == 0, result.stderr
    assert "1 replayed, 0 skipped" in result.stdout
    statuses = {snapshot.id: snapshot.get("status") for snapshot in records.stream()}
    assert statuses == {f"rec-0-{name}": "discarded", f"rec-1-{name}": "replayed"}
    pulled = pubsub_v1.SubscriberClient().pull(request={"subscription": seen.name, "max_messages": 10})
    assert [m.message.attributes["ce-id"] for m in pulled.received_messages] == ["evt-1"]
    delete_subscription(seen.name)


def test_two_operators_replaying_everything_at_once_publish_each_record_once(
    stack_runner: Any, clean_stack: dict[str, Any], db: Any
) -> None:
    project, name, count = clean_stack["project"], unique("rivals"), 30
    topic = create_topic(project, name)
    seen = pubsub_v1.SubscriberClient().create_subscription(
        request={"name": f"projects/{project}/subscriptions/{name}-pull", "topic": topic}
    )
    records = _dead_letters(db, project, topic, name, count)
    args = ("replay", "--all", "--subscription", f"{name}-sub")
    with ThreadPoolExecutor(2) as operators:
        results = list(operators.map(lambda _: run_dlq(stack_runner.state_dir, *args), range(2)))

    assert [result.returncode for result in results] == [0, 0], [result.stderr for result in results]
    replayed = [line for result in results for line in result.stdout.splitlines() if line.startswith("replayed ")]
    assert len(replayed) == count  # between them, each record once
    ce_ids: list[str] = []
    while len(ce_ids) < count:
        pulled = pubsub_v1.SubscriberClient().pull(request={"subscription": seen.name, "max_messages": 100})
        assert pulled.received_messages, f"{len(ce_ids)} of {count} messages arrived"
        ce_ids += [message.message.attributes["ce-id"] for message in pulled.received_messages]
        pubsub_v1.SubscriberClient().acknowledge(
            request={"subscription": seen.name, "ack_ids": [m.ack_id for m in pulled.received_messages]}
        )
    assert sorted(ce_ids) == sorted(f"evt-{index}" for index in range(count))

    # A replayed record is not discarded afterwards: it stays replayed, and the operator is told why.
    refused = run_dlq(stack_runner.state_dir, "discard", f"rec-0-{name}")
    assert refused.returncode == 1 and "replayed already; not discarded" in refused.stderr, refused.stderr
    assert records.document(f"rec-0-{name}").get().get("status") == "replayed"
    delete_subscription(seen.name)
