"""topology.yaml: the real file is valid, and each broken variant fails naming the offending key."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.errors import TopologyError
from stack.topology import DEFAULT_PATH, Topology, load_topology, parse_topology

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKE_PATH = Path("/project/topology.yaml")  # where the variants pretend to live; never read

BASE: dict[str, Any] = yaml.safe_load(
    """
defaults:
  subscription:
    ack_deadline_seconds: 60
    max_delivery_attempts: 5
    retry_minimum_backoff_seconds: 10
    retry_maximum_backoff_seconds: 600
    message_retention_seconds: 604800
services:
  svc:
    source: services/svc
    target: handle
    signature_type: http
    request_timeout_seconds: 60
    publishes: [bus]
topics:
  bus: {description: the bus}
  uploads-topic: {}
  bus-dead-letter: {dead_letter: true}
subscriptions:
  svc-bus:
    topic: bus
    push_to: svc
    filter: 'attributes."ce-type" = "x"'
    dead_letter_topic: bus-dead-letter
buckets:
  uploads: {name: test-uploads, notify_topic: uploads-topic}
  renditions: {name: test-renditions}
"""
)


def variant(mutate: Callable[[dict[str, Any]], object]) -> Topology:
    data = copy.deepcopy(BASE)
    mutate(data)
    return parse_topology(yaml.safe_dump(data, sort_keys=False), path=FAKE_PATH)


# --- the real file --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> Topology:
    return load_topology()


def test_default_path_is_the_repository_topology() -> None:
    assert DEFAULT_PATH == REPO_ROOT / "topology.yaml"


def test_real_topology_has_inventory_on_the_order_bus(real: Topology) -> None:
    inventory = real.services["inventory"]
    assert inventory.source == REPO_ROOT / "services" / "inventory"
    assert inventory.target == "handle_event"
    assert "order-events" in inventory.publishes
    sub = real.subscriptions["inventory-order-events"]
    assert (sub.topic, sub.push_to) == ("order-events", "inventory")
    assert sub.filter == 'hasPrefix(attributes."ce-type", "shop.order.")'
    assert sub.dead_letter_topic == "inventory-order-events-dead-letter"


def test_the_tests_import_the_topology_service_folders_and_nothing_else(real: Topology) -> None:
    """pyproject.toml's pytest `pythonpath`, the one rule by which tests import a service's package."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    pythonpath = pyproject["tool"]["pytest"]["ini_options"]["pythonpath"]
    sources = {service.source for service in real.services.values()}
    assert sorted(REPO_ROOT / entry for entry in pythonpath) == sorted({REPO_ROOT, *sources})


def test_real_subscriptions_get_the_defaults_they_do_not_override(real: Topology) -> None:
    raw = yaml.safe_load((REPO_ROOT / "topology.yaml").read_text())
    defaults = raw["defaults"]["subscription"]
    for name, sub in real.subscriptions.items():
        for key, default in defaults.items():
            assert getattr(sub, key) == raw["subscriptions"][name].get(key, default), f"{name}.{key}"


def test_real_dead_letter_topics_each_get_one_pull_subscription(real: Topology) -> None:
    dead_letter_topics = {t.name for t in real.topics.values() if t.dead_letter}
    assert dead_letter_topics, "the real topology has dead-letter topics"
    assert {p.topic for p in real.dead_letter_pulls} == dead_letter_topics
    assert all(p.name == f"{p.topic}-pull" for p in real.dead_letter_pulls)


def test_real_bucket_roles(real: Topology) -> None:
    assert real.uploads.name == "shop-uploads"
    assert real.uploads.notify_topic in real.topics
    assert real.renditions.name == "shop-renditions"


def test_model_is_immutable(real: Topology) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        real.services["inventory"].target = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        real.topics["x"] = real.topics["order-events"]  # type: ignore[index]


# --- valid variants ---------------------------------------------------------------------------------------------


def test_base_variant_is_valid_and_resolves_source_next_to_the_file() -> None:
    topology = variant(lambda d: None)
    assert topology.services["svc"].source == Path("/project/services/svc")
    assert list(topology.topics) == ["bus", "uploads-topic", "bus-dead-letter"]  # file order kept


def test_subscription_values_override_defaults() -> None:
    topology = variant(lambda d: d["subscriptions"]["svc-bus"].update(max_delivery_attempts=9, ack_deadline_seconds=90))
    sub = topology.subscriptions["svc-bus"]
    assert (sub.max_delivery_attempts, sub.ack_deadline_seconds) == (9, 90)
    assert sub.retry_maximum_backoff_seconds == 600  # untouched default


def test_a_subscription_is_unordered_unless_it_enables_message_ordering() -> None:
    assert variant(lambda d: None).subscriptions["svc-bus"].enable_message_ordering is False
    assert variant(_sub(enable_message_ordering=True)).subscriptions["svc-bus"].enable_message_ordering is True


def test_real_telemetry_subscriptions_keep_each_devices_order(real: Topology) -> None:
    # ingest and analytics publish with ordering key = device; alerts are edge-triggered on that order
    ordered = {name for name, sub in real.subscriptions.items() if sub.enable_message_ordering}
    assert ordered == {"telemetry-analytics-telemetry", "notifications-telemetry-alerts"}


def test_a_service_runs_one_instance_unless_it_says_how_many() -> None:
    assert variant(lambda d: None).services["svc"].instances == 1
    assert variant(lambda d: d["services"]["svc"].update(instances=3)).services["svc"].instances == 3


def test_dead_letter_pull_uses_defaults() -> None:
    (pull,) = variant(lambda d: d["defaults"]["subscription"].update(ack_deadline_seconds=120)).dead_letter_pulls
    assert (pull.name, pull.topic, pull.ack_deadline_seconds) == ("bus-dead-letter-pull", "bus-dead-letter", 120)


def test_subscription_on_a_dead_letter_topic_may_omit_its_own_dead_letter_topic() -> None:
    def add_recorder(d: dict[str, Any]) -> None:
        d["subscriptions"]["recorder"] = {"topic": "bus-dead-letter", "push_to": "svc"}

    assert variant(add_recorder).subscriptions["recorder"].dead_letter_topic is None


# --- broken variants -------------------------------------------------------------------------------------------


def _sub(**changes: object) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["subscriptions"]["svc-bus"].update(changes)


BROKEN: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    ("unknown topic", _sub(topic="x"), "subscriptions.svc-bus.topic: unknown topic 'x'"),
    ("unknown push target", _sub(push_to="nobody"), "subscriptions.svc-bus.push_to: unknown service 'nobody'"),
    ("unknown dead-letter topic", _sub(dead_letter_topic="nope"), "subscriptions.svc-bus.dead_letter_topic: unknown"),
    (
        "dead-letter topic not flagged",
        _sub(dead_letter_topic="uploads-topic"),
        "subscriptions.svc-bus.dead_letter_topic: topic 'uploads-topic' is not flagged dead_letter",
    ),
    (
        "bus subscription without dead-letter topic",
        lambda d: d["subscriptions"]["svc-bus"].pop("dead_letter_topic"),
        "subscriptions.svc-bus.dead_letter_topic: missing",
    ),
    (
        "ack deadline below request timeout",
        _sub(ack_deadline_seconds=30),
        "subscriptions.svc-bus.ack_deadline_seconds: 30 is below the request_timeout_seconds (60) of service 'svc'",
    ),
    (
        "too few attempts",
        _sub(max_delivery_attempts=4),
        "subscriptions.svc-bus.max_delivery_attempts: 4 is outside 5..100",
    ),
    ("too many attempts", _sub(max_delivery_attempts=101), "max_delivery_attempts: 101 is outside 5..100"),
    (
        "bad default",
        lambda d: d["defaults"]["subscription"].update(max_delivery_attempts=3),
        "defaults.subscription.max_delivery_attempts: 3 is outside 5..100",
    ),
    (
        "setting missing everywhere",
        lambda d: d["defaults"]["subscription"].pop("message_retention_seconds"),
        "subscriptions.svc-bus.message_retention_seconds: missing",
    ),
    (
        "backoff min above max",
        _sub(retry_minimum_backoff_seconds=300, retry_maximum_backoff_seconds=100),
        "subscriptions.svc-bus.retry_minimum_backoff_seconds: 300 is above",
    ),
    (
        "string number",
        _sub(ack_deadline_seconds="60"),
        "subscriptions.svc-bus.ack_deadline_seconds: must be an integer",
    ),
    ("bool number", _sub(max_delivery_attempts=True), "max_delivery_attempts: must be an integer"),
    ("typo in a key", _sub(max_delivery_attempt=7), "subscriptions.svc-bus.max_delivery_attempt: unknown key"),
    (
        "ordering flag not a bool",
        _sub(enable_message_ordering="yes"),
        "subscriptions.svc-bus.enable_message_ordering: must be true or false, got 'yes'",
    ),
    ("no renditions bucket", lambda d: d["buckets"].pop("renditions"), "buckets.renditions: missing"),
    ("no uploads bucket", lambda d: d["buckets"].pop("uploads"), "buckets.uploads: missing"),
    (
        "unknown notify topic",
        lambda d: d["buckets"]["uploads"].update(notify_topic="gone"),
        "buckets.uploads.notify_topic: unknown topic 'gone'",
    ),
    (
        "same bucket twice",
        lambda d: d["buckets"]["renditions"].update(name="test-uploads"),
        "buckets.renditions.name: 'test-uploads' is already",
    ),
    (
        "publishes to unknown topic",
        lambda d: d["services"]["svc"].update(publishes=["bus", "nowhere"]),
        "services.svc.publishes[1]: unknown topic 'nowhere'",
    ),
    (
        "bad signature type",
        lambda d: d["services"]["svc"].update(signature_type="grpc"),
        "services.svc.signature_type: 'grpc' is not one of",
    ),
    (
        "service named like an emulator",
        lambda d: d["services"].update(pubsub=d["services"]["svc"]),
        "services.pubsub: name is reserved",
    ),
    (
        "dead_letter flag not a bool",
        lambda d: d["topics"]["bus-dead-letter"].update(dead_letter="yes"),
        "topics.bus-dead-letter.dead_letter: must be true or false",
    ),
    ("too short topic id", lambda d: d["topics"].update(ab={}), "topics.ab: invalid name"),
    (
        "subscription takes a derived pull name",
        lambda d: d["subscriptions"].update({"bus-dead-letter-pull": d["subscriptions"]["svc-bus"]}),
        "subscriptions.bus-dead-letter-pull: name is reserved for the pull subscription",
    ),
    (
        "two topics, one variable",
        lambda d: d["topics"].update({"bus-events": {}, "bus_events": {}}),
        "topics.bus_events: its variable TOPIC_BUS_EVENTS is also topics.bus-events's",
    ),
    (
        "two services, one variable",
        lambda d: d["services"].update({"a-svc": d["services"]["svc"], "a--svc": d["services"]["svc"]}),
        "services.a--svc: its variable SERVICE_URL_A_SVC is also services.a-svc's",
    ),
    ("no instances", lambda d: d["services"]["svc"].update(instances=0), "services.svc.instances: 0 is outside 1..10"),
    (
        "too many instances",
        lambda d: d["services"]["svc"].update(instances=11),
        "services.svc.instances: 11 is outside",
    ),
    (
        "instances as text",
        lambda d: d["services"]["svc"].update(instances="3"),
        "services.svc.instances: must be an int",
    ),
    (
        "instances as a bool",
        lambda d: d["services"]["svc"].update(instances=True),
        "services.svc.instances: must be an",
    ),
    ("no topics section", lambda d: d.pop("topics"), "topics: missing"),
    ("unknown top-level key", lambda d: d.update(queues={}), "queues: unknown key"),
]


@pytest.mark.parametrize(("mutate", "message"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_broken_variant_names_the_offending_key(mutate: Callable[[dict[str, Any]], object], message: str) -> None:
    with pytest.raises(TopologyError) as caught:
        variant(mutate)
    assert message in str(caught.value)


def test_invalid_yaml_is_reported_with_the_path() -> None:
    with pytest.raises(TopologyError, match=r"/project/topology.yaml: not valid YAML"):
        parse_topology("services: [unclosed", path=FAKE_PATH)


def test_non_mapping_document_is_rejected() -> None:
    with pytest.raises(TopologyError, match=r"<top level>: must be a mapping"):
        parse_topology("- just\n- a list\n", path=FAKE_PATH)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match=r"cannot read topology file .*nowhere\.yaml"):
        load_topology(tmp_path / "nowhere.yaml")


def test_every_dead_letter_topic_is_pushed_to_the_dead_letter_recorder(real: Topology) -> None:
    """A new dead-letter topic without a `deadletters-<topic>` subscription would keep its messages unseen."""
    dead_letter_topics = {name for name, topic in real.topics.items() if topic.dead_letter}
    recorded = {s.topic: s for s in real.subscriptions.values() if s.push_to == "deadletters"}
    assert dead_letter_topics, "the real topology has dead-letter topics"
    assert set(recorded) == dead_letter_topics
    for topic, subscription in recorded.items():
        assert subscription.name == f"deadletters-{topic}"
        assert subscription.dead_letter_topic is None
