"""Load and validate topology.yaml, the one description of topics, subscriptions, services and buckets.

Terraform reads the same file with ``yamldecode``, so this module only *reads* the format; it never asks for
extra keys. Validation errors name the offending key as a dotted path, e.g.
``subscriptions.inventory-order-events.topic: unknown topic 'x'``.

Rules checked here (beyond types and Pub/Sub's value ranges):

- every topic, service and dead-letter topic a key refers to exists;
- ``dead_letter_topic`` is a topic flagged ``dead_letter: true``, other than the subscription's own topic;
- a subscription on a bus topic (not itself a dead-letter topic) must name a ``dead_letter_topic``;
- ``ack_deadline_seconds`` >= the pushed-to service's ``request_timeout_seconds`` (else Pub/Sub redelivers a
  message while the first delivery is still being handled);
- ``max_delivery_attempts`` in 5..100 (Pub/Sub's range);
- ``enable_message_ordering`` (optional, default false) is true or false: Pub/Sub then pushes the messages of one
  ordering key one at a time, in the order they were published;
- bucket roles ``uploads`` and ``renditions`` are present;
- a service's ``instances`` (optional, default 1) is in 1..MAX_INSTANCES. Only the local stack and compose read
  it (``make up INSTANCES=...`` / ``--instances`` override it); Terraform leaves Cloud Run's instance counts to its
  autoscaler and ``var.service_settings`` (docs/deploy.md).

Derived rule (not written in the YAML, implemented by the local bootstrap AND by Terraform): every dead-letter
topic ``T`` gets a pull subscription named ``T-pull``, so dead letters are kept and can be inspected/replayed.
``defaults.subscription`` supplies its ack deadline and retention. See :attr:`Topology.dead_letter_pulls`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from stack.envnames import bucket_var, service_url_var, topic_var
from stack.errors import TopologyError

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "topology.yaml"

DEAD_LETTER_PULL_SUFFIX = "-pull"
REQUIRED_BUCKET_ROLES = ("uploads", "renditions")
SIGNATURE_TYPES = ("http", "event", "cloudevent", "typed")
# The local stack keys its processes (stack.json "pids") by these names, so services can't take them.
RESERVED_SERVICE_NAMES = frozenset({"pubsub", "firestore", "storage", "smtp", "scheduler", "supervisor"})

# Pub/Sub's accepted ranges, so a bad value fails here rather than at `terraform apply`.
SUBSCRIPTION_SETTING_RANGES: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "ack_deadline_seconds": (10, 600),
        "max_delivery_attempts": (5, 100),
        "retry_minimum_backoff_seconds": (0, 600),
        "retry_maximum_backoff_seconds": (0, 600),
        "message_retention_seconds": (600, 31 * 24 * 3600),
    }
)
REQUEST_TIMEOUT_RANGE = (1, 3600)  # Cloud Run's request timeout limits
MAX_INSTANCES = 10  # local instances: enough to make contention visible; each is a whole Python process

_RESOURCE_ID = re.compile(r"^(?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254}$")  # Pub/Sub topic/subscription ids
_SERVICE_NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,47}[a-z0-9])?$")  # Cloud Run service names
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
_BUCKET_ROLE = re.compile(r"^[a-z][a-z0-9_]*$")  # becomes BUCKET_<ROLE>
_NAME_RULES = {
    _RESOURCE_ID: "a Pub/Sub id: 3-255 characters from letters, digits and -._~+%, starting with a letter, not 'goog'",
    _SERVICE_NAME: "a Cloud Run service name: up to 49 lowercase letters, digits and hyphens, starting with a letter",
    _BUCKET_ROLE: "lowercase letters, digits and underscores, starting with a letter",
}


@dataclass(frozen=True)
class Service:
    name: str
    source: Path  # absolute; the YAML holds it relative to the topology file's folder
    target: str
    signature_type: str
    request_timeout_seconds: int
    publishes: tuple[str, ...]
    instances: int = 1  # processes (local stack) or containers (compose) serving it behind one address


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    dead_letter: bool


@dataclass(frozen=True)
class Subscription:
    name: str
    topic: str
    push_to: str
    filter: str | None
    dead_letter_topic: str | None
    ack_deadline_seconds: int
    max_delivery_attempts: int
    retry_minimum_backoff_seconds: int
    retry_maximum_backoff_seconds: int
    message_retention_seconds: int
    enable_message_ordering: bool = False


@dataclass(frozen=True)
class PullSubscription:
    """The derived pull subscription on a dead-letter topic (see the module docstring)."""

    name: str
    topic: str
    ack_deadline_seconds: int
    message_retention_seconds: int


@dataclass(frozen=True)
class Bucket:
    role: str
    name: str
    notify_topic: str | None


@dataclass(frozen=True)
class Schedule:
    """An HTTP POST to a service on a timer: Cloud Scheduler in the cloud, the stack's scheduler locally."""

    name: str
    service: str
    path: str
    cron: str  # Cloud Scheduler's unix-cron schedule
    local_every_seconds: int


@dataclass(frozen=True)
class Topology:
    path: Path
    services: Mapping[str, Service]
    topics: Mapping[str, Topic]
    subscriptions: Mapping[str, Subscription]
    buckets: Mapping[str, Bucket]
    dead_letter_pulls: tuple[PullSubscription, ...]
    schedules: Mapping[str, Schedule] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def uploads(self) -> Bucket:
        return self.buckets["uploads"]

    @property
    def renditions(self) -> Bucket:
        return self.buckets["renditions"]

    def subscriptions_for(self, service: str) -> tuple[Subscription, ...]:
        return tuple(s for s in self.subscriptions.values() if s.push_to == service)


def dead_letter_pull_name(topic: str) -> str:
    return f"{topic}{DEAD_LETTER_PULL_SUFFIX}"


def load_topology(path: Path | None = None) -> Topology:
    """Read and validate a topology file (default: ``<repo>/topology.yaml``)."""
    path = (path or DEFAULT_PATH).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError(f"cannot read topology file {path}: {exc.strerror or exc}") from exc
    return parse_topology(text, path=path)


def parse_topology(text: str, *, path: Path) -> Topology:
    """Validate topology YAML text; ``path`` is where it lives (relative ``source`` folders resolve from it)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(f"{path}: not valid YAML: {exc}") from exc
    return _build(_mapping(data, "<top level>"), path.resolve())


def _build(data: dict[str, Any], path: Path) -> Topology:
    _only_keys(
        data, "", required=("services", "topics", "subscriptions", "buckets"), optional=("defaults", "schedules")
    )
    defaults = _defaults(data.get("defaults"))
    topics = {name: _topic(name, raw) for name, raw in _named(data["topics"], "topics", _RESOURCE_ID)}
    services = {
        name: _service(name, raw, path.parent, topics)
        for name, raw in _named(data["services"], "services", _SERVICE_NAME)
    }
    subscriptions = {
        name: _subscription(name, raw, defaults, topics, services)
        for name, raw in _named(data["subscriptions"], "subscriptions", _RESOURCE_ID)
    }
    buckets = _buckets(data["buckets"], topics)
    pulls = _dead_letter_pulls(topics, subscriptions, defaults)
    schedules = {
        name: _schedule(name, raw, services)
        for name, raw in _named(data.get("schedules") or {}, "schedules", _RESOURCE_ID)
    }
    _distinct_variables("topics", topics, topic_var)
    _distinct_variables("services", services, service_url_var)
    _distinct_variables("buckets", buckets, bucket_var)
    return Topology(
        path=path,
        services=MappingProxyType(services),
        topics=MappingProxyType(topics),
        subscriptions=MappingProxyType(subscriptions),
        buckets=MappingProxyType(buckets),
        dead_letter_pulls=pulls,
        schedules=MappingProxyType(schedules),
    )


def _distinct_variables(section: str, names: Iterable[str], variable: Callable[[str], str]) -> None:
    """Two names whose environment variables are spelled alike (``order-events``, ``order_events``) would give a
    service one of them silently (and Terraform's merge would keep one): refuse them here."""
    owners: dict[str, str] = {}
    for name in names:
        var = variable(name)
        if var in owners:
            raise TopologyError(f"{section}.{name}: its variable {var} is also {section}.{owners[var]}'s; rename one")
        owners[var] = name


def _schedule(name: str, raw: Any, services: Mapping[str, Service]) -> Schedule:
    where = f"schedules.{name}"
    data = _mapping(raw, where)
    _only_keys(data, where, required=("service", "path", "cron", "local_every_seconds"), optional=())
    service = _string(data, "service", where)
    if service not in services:
        raise TopologyError(f"{where}.service: unknown service {service!r}")
    path = _string(data, "path", where)
    if not path.startswith("/"):
        raise TopologyError(f"{where}.path: must start with '/', got {path!r}")
    cron = _string(data, "cron", where)
    if len(cron.split()) != 5:
        raise TopologyError(f"{where}.cron: must be a five-field unix-cron schedule, got {cron!r}")
    return Schedule(
        name=name,
        service=service,
        path=path,
        cron=cron,
        local_every_seconds=_int_in(data, "local_every_seconds", where, (1, 3600)),
    )


def _defaults(raw: Any) -> dict[str, int]:
    if raw is None:
        return {}
    data = _mapping(raw, "defaults")
    _only_keys(data, "defaults", required=(), optional=("subscription",))
    if data.get("subscription") is None:
        return {}
    sub = _mapping(data["subscription"], "defaults.subscription")
    _only_keys(sub, "defaults.subscription", required=(), optional=tuple(SUBSCRIPTION_SETTING_RANGES))
    return _settings(sub, "defaults.subscription")


def _topic(name: str, raw: Any) -> Topic:
    where = f"topics.{name}"
    data = _mapping(raw if raw is not None else {}, where)
    _only_keys(data, where, required=(), optional=("description", "dead_letter"))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise TopologyError(f"{where}.description: must be a string")
    return Topic(name=name, description=description, dead_letter=_flag(data, "dead_letter", where))


def _service(name: str, raw: Any, base_dir: Path, topics: Mapping[str, Topic]) -> Service:
    where = f"services.{name}"
    if name in RESERVED_SERVICE_NAMES:
        reserved = ", ".join(sorted(RESERVED_SERVICE_NAMES))
        raise TopologyError(f"{where}: name is reserved for the local stack's own processes ({reserved})")
    data = _mapping(raw, where)
    _only_keys(
        data,
        where,
        required=("source", "target", "signature_type", "request_timeout_seconds"),
        optional=("publishes", "instances"),
    )
    signature_type = _string(data, "signature_type", where)
    if signature_type not in SIGNATURE_TYPES:
        raise TopologyError(f"{where}.signature_type: {signature_type!r} is not one of {', '.join(SIGNATURE_TYPES)}")
    publishes = data.get("publishes") or []
    if not isinstance(publishes, list):
        raise TopologyError(f"{where}.publishes: must be a list of topic names")
    for index, topic in enumerate(publishes):
        if topic not in topics:
            raise TopologyError(f"{where}.publishes[{index}]: unknown topic {topic!r}")
    return Service(
        name=name,
        source=(base_dir / _string(data, "source", where)).resolve(),
        target=_string(data, "target", where),
        signature_type=signature_type,
        request_timeout_seconds=_int_in(data, "request_timeout_seconds", where, REQUEST_TIMEOUT_RANGE),
        publishes=tuple(publishes),
        instances=_int_in(data, "instances", where, (1, MAX_INSTANCES)) if "instances" in data else 1,
    )


def _subscription(
    name: str,
    raw: Any,
    defaults: Mapping[str, int],
    topics: Mapping[str, Topic],
    services: Mapping[str, Service],
) -> Subscription:
    where = f"subscriptions.{name}"
    data = _mapping(raw, where)
    _only_keys(
        data,
        where,
        required=("topic", "push_to"),
        optional=("filter", "dead_letter_topic", "enable_message_ordering", *SUBSCRIPTION_SETTING_RANGES),
    )
    topic = _string(data, "topic", where)
    if topic not in topics:
        raise TopologyError(f"{where}.topic: unknown topic {topic!r}")
    push_to = _string(data, "push_to", where)
    if push_to not in services:
        raise TopologyError(f"{where}.push_to: unknown service {push_to!r}")
    filter_ = _optional_string(data, "filter", where)
    dead_letter_topic = _dead_letter_topic(data, where, topic, topics)
    settings = {**defaults, **_settings(data, where)}
    for key in SUBSCRIPTION_SETTING_RANGES:
        if key not in settings:
            raise TopologyError(f"{where}.{key}: missing, and defaults.subscription has no value for it")
    if settings["retry_minimum_backoff_seconds"] > settings["retry_maximum_backoff_seconds"]:
        raise TopologyError(
            f"{where}.retry_minimum_backoff_seconds: {settings['retry_minimum_backoff_seconds']} is above "
            f"retry_maximum_backoff_seconds ({settings['retry_maximum_backoff_seconds']})"
        )
    timeout = services[push_to].request_timeout_seconds
    if settings["ack_deadline_seconds"] < timeout:
        raise TopologyError(
            f"{where}.ack_deadline_seconds: {settings['ack_deadline_seconds']} is below the "
            f"request_timeout_seconds ({timeout}) of service {push_to!r}; Pub/Sub would redeliver "
            "while the first delivery is still running"
        )
    return Subscription(
        name=name,
        topic=topic,
        push_to=push_to,
        filter=filter_,
        dead_letter_topic=dead_letter_topic,
        **settings,
        enable_message_ordering=_flag(data, "enable_message_ordering", where),
    )


def _dead_letter_topic(data: Mapping[str, Any], where: str, topic: str, topics: Mapping[str, Topic]) -> str | None:
    dead_letter_topic = _optional_string(data, "dead_letter_topic", where)
    if dead_letter_topic is None:
        # A dead-letter topic's own consumers may go without one; bus consumers may not (poison messages).
        if not topics[topic].dead_letter:
            raise TopologyError(f"{where}.dead_letter_topic: missing; every subscription on a bus topic needs one")
        return None
    if dead_letter_topic not in topics:
        raise TopologyError(f"{where}.dead_letter_topic: unknown topic {dead_letter_topic!r}")
    if not topics[dead_letter_topic].dead_letter:
        raise TopologyError(f"{where}.dead_letter_topic: topic {dead_letter_topic!r} is not flagged dead_letter: true")
    if dead_letter_topic == topic:
        raise TopologyError(f"{where}.dead_letter_topic: must differ from the subscription's own topic")
    return dead_letter_topic


def _settings(data: Mapping[str, Any], where: str) -> dict[str, int]:
    ranges = SUBSCRIPTION_SETTING_RANGES
    return {key: _int_in(data, key, where, bounds) for key, bounds in ranges.items() if key in data}


def _buckets(raw: Any, topics: Mapping[str, Topic]) -> dict[str, Bucket]:
    buckets: dict[str, Bucket] = {}
    owner_of_name: dict[str, str] = {}
    for role, value in _named(raw, "buckets", _BUCKET_ROLE):
        where = f"buckets.{role}"
        data = _mapping(value, where)
        _only_keys(data, where, required=("name",), optional=("notify_topic",))
        name = _string(data, "name", where)
        if not _BUCKET_NAME.match(name):
            raise TopologyError(f"{where}.name: {name!r} is not a valid bucket name")
        if name in owner_of_name:
            raise TopologyError(f"{where}.name: {name!r} is already the name of role {owner_of_name[name]!r}")
        owner_of_name[name] = role
        notify_topic = _optional_string(data, "notify_topic", where)
        if notify_topic is not None and notify_topic not in topics:
            raise TopologyError(f"{where}.notify_topic: unknown topic {notify_topic!r}")
        buckets[role] = Bucket(role=role, name=name, notify_topic=notify_topic)
    for role in REQUIRED_BUCKET_ROLES:
        if role not in buckets:
            required = ", ".join(REQUIRED_BUCKET_ROLES)
            raise TopologyError(f"buckets.{role}: missing (required roles: {required})")
    return buckets


def _dead_letter_pulls(
    topics: Mapping[str, Topic], subscriptions: Mapping[str, Subscription], defaults: Mapping[str, int]
) -> tuple[PullSubscription, ...]:
    pulls = []
    for topic in topics.values():
        if not topic.dead_letter:
            continue
        name = dead_letter_pull_name(topic.name)
        if name in subscriptions:
            raise TopologyError(
                f"subscriptions.{name}: name is reserved for the pull subscription of dead-letter topic {topic.name!r}"
            )
        pulls.append(
            PullSubscription(
                name=name,
                topic=topic.name,
                ack_deadline_seconds=defaults.get("ack_deadline_seconds", 60),
                message_retention_seconds=defaults.get("message_retention_seconds", 7 * 24 * 3600),
            )
        )
    return tuple(pulls)


# --- small readers that know where they are, so every error names its key -----------------------------------


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TopologyError(f"{where}: must be a mapping, got {type(value).__name__}")
    return value


def _named(value: Any, where: str, pattern: re.Pattern[str]) -> list[tuple[str, Any]]:
    items = list(_mapping(value if value is not None else {}, where).items())
    for name, _ in items:
        if not isinstance(name, str) or not pattern.match(name):
            raise TopologyError(f"{where}.{name}: invalid name; must be {_NAME_RULES[pattern]}")
    return items


def _only_keys(data: Mapping[str, Any], where: str, *, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    prefix = f"{where}." if where else ""
    for key in required:
        if key not in data:
            raise TopologyError(f"{prefix}{key}: missing")
    allowed = set(required) | set(optional)
    for key in data:
        if key not in allowed:
            # Typos would otherwise silently fall back to a default (e.g. max_delivery_attempt).
            raise TopologyError(f"{prefix}{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _string(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise TopologyError(f"{where}.{key}: must be a non-empty string, got {value!r}")
    return value


def _optional_string(data: Mapping[str, Any], key: str, where: str) -> str | None:
    return None if data.get(key) is None else _string(data, key, where)


def _flag(data: Mapping[str, Any], key: str, where: str) -> bool:
    """An optional true/false key, false when absent."""
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise TopologyError(f"{where}.{key}: must be true or false, got {value!r}")
    return value


def _int_in(data: Mapping[str, Any], key: str, where: str, bounds: tuple[int, int]) -> int:
    value = data.get(key)
    low, high = bounds
    # bool is an int subclass; `true` is never a meaningful count of seconds.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TopologyError(f"{where}.{key}: must be an integer, got {value!r}")
    if not low <= value <= high:
        raise TopologyError(f"{where}.{key}: {value} is outside {low}..{high}")
    return value
