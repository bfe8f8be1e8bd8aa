"""Parity: every topology entry has its cloud resources, and nothing extra.

Each resource's for_each / count expression is evaluated by real Terraform (`terraform console` over the variables
and the topology locals: no provider needed) against a topology file, and compared with what the Python loader
(stack/topology.py) reads from the same file: the same YAML, the same derived rules."""

from __future__ import annotations

import json
import re
import textwrap
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from infra_support import REPO, blocks, console_eval, expression, locals_defined, named, parse_dir

from eventkit.config import env_name
from stack.envnames import env_var
from stack.services import service_env
from stack.topology import Topology, dead_letter_pull_name, parse_topology

PROJECT = "shop-parity-1"

# Resources that do not come from the topology (their for_each/count is fixed or a variable's opt-in).
NOT_FROM_TOPOLOGY = {
    "google_project_service.enabled",
    "google_firestore_field.ttl",
    "google_firestore_field.unindexed",
    "google_monitoring_notification_channel.email",
    "google_project_iam_audit_config.storage",
}


def expected_instances(
    topo: Topology,
    *,
    eventarc: bool,
    public: bool,
    invokers: tuple[str, ...] = (),
    extra_grants: tuple[tuple[str, str], ...] = (),
) -> dict[str, set[str]]:
    notify = {b.notify_topic: role for role, b in topo.buckets.items() if b.notify_topic}
    triggers = {n: s for n, s in topo.subscriptions.items() if eventarc and s.topic in notify}
    pubsub = {n: s for n, s in topo.subscriptions.items() if n not in triggers}
    push = {n for n, s in pubsub.items() if s.dead_letter_topic}
    trigger_buckets = {notify[s.topic] for s in triggers.values()}
    notifications = {r for r, b in topo.buckets.items() if b.notify_topic and r not in trigger_buckets}
    services = set(topo.services)
    dead_letter_topics = {n for n, t in topo.topics.items() if t.dead_letter}
    pulls = {p.name for p in topo.dead_letter_pulls}
    one_if = {"0"} if triggers else set()
    # The images backfill job's identity: where a subscription reads the uploads bucket's notification topic.
    uploads_topic = topo.buckets["uploads"].notify_topic if "uploads" in topo.buckets else None
    backfill = {"0"} if "images" in services and uploads_topic and "uploads" not in trigger_buckets else set()
    readers = {(s.push_to, notify[s.topic]) for s in topo.subscriptions.values() if s.topic in notify}
    presets = {("images", "renditions"), ("console", "uploads"), ("console", "renditions")} & {
        (name, role) for name in services for role in topo.buckets
    }
    bucket_grants = {f"{service}/{role}" for service, role in readers | presets | set(extra_grants)}
    return {
        "google_pubsub_topic.topic": set(topo.topics),
        "google_pubsub_subscription.push": push,
        "google_pubsub_subscription.dead_letter_push": set(pubsub) - push,
        "google_pubsub_subscription.dead_letter_pull": pulls,
        "google_pubsub_topic_iam_member.dead_letter_publisher": dead_letter_topics,
        "google_pubsub_subscription_iam_member.dead_letter_subscriber": push,
        "google_pubsub_subscription_iam_member.dead_letter_source_viewer": {
            f"{name}/{recorder.push_to}"
            for name in push
            for recorder in pubsub.values()
            if not recorder.dead_letter_topic and recorder.topic == pubsub[name].dead_letter_topic
        },
        "google_cloud_run_v2_service.service": services,
        "google_service_account.service": services,
        "google_project_iam_member.datastore_user": services,
        "google_monitoring_alert_policy.run_5xx": services,
        "google_pubsub_topic_iam_member.service_publisher": {
            f"{name}/{topic}" for name, s in topo.services.items() for topic in s.publishes
        },
        "google_cloud_run_v2_service_iam_member.push_invoker": {s.push_to for s in pubsub.values()},
        "google_cloud_run_v2_service_iam_member.scheduler_invoker": {s.service for s in topo.schedules.values()},
        "google_cloud_scheduler_job.schedule": set(topo.schedules),
        "google_storage_bucket.bucket": set(topo.buckets),
        "google_storage_bucket_iam_member.service_bucket": bucket_grants,
        "google_storage_notification.notify": notifications,
        "google_pubsub_topic_iam_member.storage_notification_publisher": notifications,
        "google_eventarc_trigger.storage": set(triggers),
        "google_cloud_run_v2_service_iam_member.eventarc_invoker": {s.push_to for s in triggers.values()},
        "google_service_account.eventarc": one_if,
        "google_service_account.images_backfill": backfill,
        "google_project_iam_member.images_backfill_datastore": backfill,
        "google_storage_bucket_iam_member.images_backfill_uploads": backfill,
        "google_pubsub_topic_iam_member.images_backfill_publisher": backfill,
        "google_pubsub_topic_iam_member.images_backfill_viewer": backfill,
        "google_project_iam_member.eventarc_event_receiver": one_if,
        "google_project_iam_member.storage_agent_pubsub_publisher": one_if,
        "google_monitoring_alert_policy.dead_letters": pulls,
        "google_monitoring_alert_policy.oldest_unacked": set(pubsub),
        "google_cloud_run_v2_service_iam_member.public_orders_api": {"orders"}
        if public and "orders" in services
        else set(),
        "google_cloud_run_v2_service_iam_member.console_invoker": set(invokers) if "console" in services else set(),
    }


def _instance_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value)
    if isinstance(value, list):
        return {str(v) for v in value}
    if isinstance(value, int | float):
        return {str(i) for i in range(int(value))}
    raise AssertionError(f"unexpected for_each/count value {value!r}")


def evaluate(tmp: Path, text: str, variables: dict[str, Any]) -> tuple[dict[str, set[str]], dict[str, Any]]:
    parsed = parse_dir()
    defined = set(locals_defined({"topology.tf": parse_dir(REPO / "terraform")["topology.tf"]}))
    expressions: dict[str, str] = {}
    for block in blocks(parsed, "resource"):
        meta = block.body.get("for_each", block.body.get("count"))
        if meta is None or block.address in NOT_FROM_TOPOLOGY:
            continue
        expr = expression(meta)
        used = set(re.findall(r"\blocal\.(\w+)", expr))
        if used - defined:
            assert block.address in NOT_FROM_TOPOLOGY, (
                f"{block.address}: for_each uses {used - defined} outside topology.tf"
            )
            continue
        expressions[block.address] = expr
    extra = {
        "service_env": "local.service_env",
        "push_subscriptions": "local.push_subscriptions",
        "dead_letter_pulls": "local.dead_letter_pulls",
        "buckets": "local.buckets",
        "schedules": "local.schedules",
        "service_settings": "local.service_settings",
        "images_backfill_env": "local.images_backfill_env",
        "bucket_grants": "local.bucket_grants",
    }
    values = console_eval(
        tmp, {**expressions, **{f"__{k}": v for k, v in extra.items()}}, topology_text=text, variables=variables
    )
    instances = {address: _instance_keys(values[address]) for address in expressions}
    return instances, {k: values[f"__{k}"] for k in extra}


BIG_TOPOLOGY = textwrap.dedent(
    """
    defaults:
      subscription:
        ack_deadline_seconds: 120
        max_delivery_attempts: 7
        retry_minimum_backoff_seconds: 5
        retry_maximum_backoff_seconds: 300
        message_retention_seconds: 86400
    services:
      orders: {source: services/orders, target: api, signature_type: http, request_timeout_seconds: 30,
               publishes: [order-events]}
      images: {source: services/images, target: handle_event, signature_type: http, request_timeout_seconds: 300,
               publishes: [image-events]}
      deadletters: {source: services/deadletters, target: handle_event, signature_type: http,
                    request_timeout_seconds: 60, instances: 3}
    topics:
      order-events: {description: bus}
      image-events: {}
      upload-events:
      images-upload-dead-letter: {dead_letter: true}
      orders-dl: {dead_letter: true}
    subscriptions:
      images-upload-events:
        topic: upload-events
        push_to: images
        dead_letter_topic: images-upload-dead-letter
        ack_deadline_seconds: 300
      orders-saga: {topic: order-events, push_to: orders, dead_letter_topic: orders-dl, filter: 'attributes.x = "y"',
                    enable_message_ordering: true}
      deadletters-images: {topic: images-upload-dead-letter, push_to: deadletters}
    buckets:
      uploads: {name: shop-uploads, notify_topic: upload-events}
      renditions: {name: shop-renditions}
      raw_exports: {name: shop-exports}
    schedules:
      sweep: {service: orders, path: /tasks/sweep-outbox, cron: "*/2 * * * *", local_every_seconds: 5}
    """
)

CASES = {
    "repo-notification": (None, {}),
    "repo-eventarc-public": (
        None,
        {"storage_trigger": "eventarc", "public_orders_api": True, "console_invokers": ["user:ana@example.com"]},
    ),
    "big-notification": (BIG_TOPOLOGY, {}),
    # No console in this topology: the operators named get no grant.
    "big-eventarc": (
        BIG_TOPOLOGY,
        {"storage_trigger": "eventarc", "public_orders_api": True, "console_invokers": ["group:ops@example.com"]},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_topology_entry_has_its_resources_and_nothing_extra(tmp_path: Path, case: str) -> None:
    text, variables = CASES[case]
    text = text if text is not None else (REPO / "topology.yaml").read_text()
    topo = parse_topology(text, path=REPO / "topology.yaml")
    instances, _ = evaluate(tmp_path, text, {"project_id": PROJECT, **variables})
    expected = expected_instances(
        topo,
        eventarc=variables.get("storage_trigger") == "eventarc",
        public=bool(variables.get("public_orders_api")),
        invokers=tuple(variables.get("console_invokers", ())),
    )
    assert set(instances) == set(expected), "resources without a parity rule (add them to expected_instances)"
    for address, keys in expected.items():
        assert instances[address] == keys, address
    if case.startswith("big"):
        assert instances["google_pubsub_subscription.dead_letter_push"] == {"deadletters-images"}
        assert instances["google_storage_bucket.bucket"] == {"uploads", "renditions", "raw_exports"}


@pytest.mark.parametrize("case", ["repo-notification", "big-notification"])
def test_settings_env_and_names_follow_the_topology(tmp_path: Path, case: str) -> None:
    text, variables = CASES[case]
    text = text if text is not None else (REPO / "topology.yaml").read_text()
    topo = parse_topology(text, path=REPO / "topology.yaml")
    _, values = evaluate(tmp_path, text, {"project_id": PROJECT, **variables})
    for name, sub in values["push_subscriptions"].items():
        loaded = topo.subscriptions[name]
        for key in (
            "topic",
            "push_to",
            "filter",
            "dead_letter_topic",
            "ack_deadline_seconds",
            "max_delivery_attempts",
            "retry_minimum_backoff_seconds",
            "retry_maximum_backoff_seconds",
            "message_retention_seconds",
            "enable_message_ordering",
        ):
            assert sub[key] == getattr(loaded, key), (name, key)
        assert sub["ack_deadline_seconds"] >= topo.services[sub["push_to"]].request_timeout_seconds
    assert values["dead_letter_pulls"] == {
        p.name: {
            "topic": p.topic,
            "ack_deadline_seconds": p.ack_deadline_seconds,
            "message_retention_seconds": p.message_retention_seconds,
        }
        for p in topo.dead_letter_pulls
    }
    assert all(name == dead_letter_pull_name(p["topic"]) for name, p in values["dead_letter_pulls"].items())
    assert values["buckets"] == {
        role: {"name": f"{PROJECT}-{b.name}", "notify_topic": b.notify_topic} for role, b in topo.buckets.items()
    }
    assert values["schedules"] == {
        n: {"service": s.service, "path": s.path, "cron": s.cron} for n, s in topo.schedules.items()
    }
    for name, service in topo.services.items():
        env = values["service_env"][name]
        buckets = values["service_settings"][name]["buckets"]
        expected = {"GOOGLE_CLOUD_PROJECT": PROJECT, "FUNCTION_TARGET": service.target}
        # gunicorn runs as many requests at once as Cloud Run sends
        expected["THREADS"] = str(values["service_settings"][name]["concurrency"])
        expected |= {env_var("TOPIC", t): t for t in service.publishes}
        expected |= {env_var("BUCKET", role): f"{PROJECT}-{topo.buckets[role].name}" for role in buckets}
        if name == "images":  # one resize/encode thread per whole vCPU
            expected["IMAGE_THREADS"] = str(int(float(values["service_settings"][name]["cpu"])))
        assert env == expected, name
        # a consumer of a bucket's notification topic reads that bucket
        for sub in topo.subscriptions_for(name):
            for role, bucket in topo.buckets.items():
                if bucket.notify_topic == sub.topic:
                    assert buckets.get(role) in ("read", "read_write"), (name, role)
    # The backfill job runs in the images service's environment (the same fingerprint), plus the topic it sends to.
    uploads_topic = topo.buckets["uploads"].notify_topic
    expected_backfill = {**values["service_env"]["images"], "TOPIC_UPLOAD_EVENTS": uploads_topic}
    assert values["images_backfill_env"] == expected_backfill
    for name in {"orders", "telemetry-ingest"} & set(topo.services):
        assert values["service_settings"][name]["ingress"] == "INGRESS_TRAFFIC_ALL", name
    ordered = {name for name, sub in values["push_subscriptions"].items() if sub["enable_message_ordering"]}
    assert ordered == {name for name, sub in topo.subscriptions.items() if sub.enable_message_ordering} != set()
    if case.startswith("big"):
        assert values["service_settings"]["images"]["buckets"] == {"uploads": "read", "renditions": "read_write"}
        assert values["service_settings"]["images"]["cpu"] == "2"
        assert values["service_settings"]["orders"]["ingress"] == "INGRESS_TRAFFIC_ALL"
        assert values["service_settings"]["deadletters"]["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"


def test_service_settings_override_presets_and_defaults(tmp_path: Path) -> None:
    overrides = {
        "images": {"memory": "4Gi", "buckets": {"raw_exports": "write"}},
        "orders": {"max_instances": 3, "concurrency": 40},
    }
    _, values = evaluate(tmp_path, BIG_TOPOLOGY, {"project_id": PROJECT, "service_settings": overrides})
    images = values["service_settings"]["images"]
    assert (images["memory"], images["cpu"], images["concurrency"]) == ("4Gi", "2", 4)
    assert values["service_env"]["images"]["THREADS"] == "4"
    assert (values["service_settings"]["orders"]["concurrency"], values["service_env"]["orders"]["THREADS"]) == (
        40,
        "40",
    )
    deadletters = values["service_settings"]["deadletters"]
    assert (deadletters["concurrency"], values["service_env"]["deadletters"]["THREADS"]) == (16, "16")  # the default
    assert images["buckets"] == {"uploads": "read", "renditions": "read_write", "raw_exports": "write"}
    assert values["service_env"]["images"]["BUCKET_RAW_EXPORTS"] == f"{PROJECT}-shop-exports"
    assert values["service_settings"]["orders"]["max_instances"] == 3
    # `instances: 3` in the topology runs three locally and under compose; Cloud Run's counts stay Terraform's.
    assert (deadletters["min_instances"], deadletters["max_instances"]) == (0, 10)


def test_alert_email_reaches_the_notifications_service_and_no_other(tmp_path: Path) -> None:
    text = (REPO / "topology.yaml").read_text()
    _, values = evaluate(tmp_path, text, {"project_id": PROJECT, "alert_email": "ops@shop.example"})

    with_alert = {name for name, env in values["service_env"].items() if "ALERT_EMAIL" in env}

    assert with_alert == {"notifications"}
    assert values["service_env"]["notifications"]["ALERT_EMAIL"] == "ops@shop.example"


def test_the_image_converter_uses_a_thread_per_whole_vcpu(tmp_path: Path) -> None:
    _, preset = evaluate(tmp_path / "preset", BIG_TOPOLOGY, {"project_id": PROJECT})
    _, four = evaluate(
        tmp_path / "four", BIG_TOPOLOGY, {"project_id": PROJECT, "service_settings": {"images": {"cpu": "4"}}}
    )
    _, milli = evaluate(
        tmp_path / "milli", BIG_TOPOLOGY, {"project_id": PROJECT, "service_settings": {"images": {"cpu": "1000m"}}}
    )

    assert preset["service_env"]["images"]["IMAGE_THREADS"] == "2"
    assert four["service_env"]["images"]["IMAGE_THREADS"] == "4"
    assert "IMAGE_THREADS" not in milli["service_env"]["images"]  # the service then counts its CPUs itself
    assert {name for name, env in preset["service_env"].items() if "IMAGE_THREADS" in env} == {"images"}


def test_rendition_settings_reach_the_images_service_and_its_backfill_job_alike(tmp_path: Path) -> None:
    settings = {"IMAGE_FORMATS": "jpeg,webp,avif", "IMAGE_RENDITIONS": "large:1600,small:400"}
    variables = {"project_id": PROJECT, "image_settings": settings}
    _, values = evaluate(tmp_path / "set", BIG_TOPOLOGY, variables)
    _, eventarc = evaluate(tmp_path / "eventarc", BIG_TOPOLOGY, {**variables, "storage_trigger": "eventarc"})

    assert values["service_env"]["images"].items() >= settings.items()
    assert values["images_backfill_env"] == {**values["service_env"]["images"], "TOPIC_UPLOAD_EVENTS": "upload-events"}
    assert {name for name, env in values["service_env"].items() if "IMAGE_FORMATS" in env} == {"images"}
    assert eventarc["images_backfill_env"] == {}  # nothing reads the uploads topic: no backfill


def test_the_console_may_create_uploads_and_read_renditions_and_nothing_more(tmp_path: Path) -> None:
    text = (REPO / "topology.yaml").read_text()
    settings = {"IMAGE_MAX_UPLOAD_BYTES": "1048576", "IMAGE_FORMATS": "jpeg"}
    _, values = evaluate(tmp_path, text, {"project_id": PROJECT, "image_settings": settings})

    console_grants = {key: grant for key, grant in values["bucket_grants"].items() if grant["service"] == "console"}
    env = values["service_env"]["console"]

    assert console_grants == {
        "console/uploads": {"service": "console", "bucket": "uploads", "role": "roles/storage.objectCreator"},
        "console/renditions": {"service": "console", "bucket": "renditions", "role": "roles/storage.objectViewer"},
    }
    assert (env["BUCKET_UPLOADS"], env["BUCKET_RENDITIONS"]) == (
        f"{PROJECT}-shop-uploads",
        f"{PROJECT}-shop-renditions",
    )
    # The images service's own limit, so the console refuses what the images service would reject as too large.
    assert env["IMAGE_MAX_UPLOAD_BYTES"] == values["service_env"]["images"]["IMAGE_MAX_UPLOAD_BYTES"] == "1048576"
    assert "IMAGE_FORMATS" not in env


# --- the env-name rule ------------------------------------------------------------------------------------------------

# Names the rule must treat as eventkit does, whether or not topology.yaml's own name rules let them through:
# runs of separators, separators first or last, dots, digits first or inside, underscores, no letters at all,
# non-ASCII text (Terraform keeps every string NFC-normalized: "e" + U+0301 is "é" to it).
AWKWARD_NAMES = [
    "order-events",
    "order--events",
    "order-_.events",
    "-order-events",
    "order-events-",
    "__uploads__",
    "raw_exports",
    "v2.order..events",
    "9lives",
    "a1-2b.3",
    "x~y+z%w",
    "tab\tand space",
    "---",
    "",
    "café-crème",
    "e\u0301t\u00e9",
]


def terraform_env_names(tmp: Path, rules: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each rule (the text of a ``{for name in local.env_named : name => ...}`` local) over AWKWARD_NAMES."""
    names = json.dumps(AWKWARD_NAMES)  # a JSON list of strings is an HCL tuple of the same strings
    return console_eval(
        tmp,
        {key: rule.replace("local.env_named", names) for key, rule in rules.items()},
        topology_text=(REPO / "topology.yaml").read_text(),
        variables={"project_id": PROJECT},
    )


def _python_env_names() -> dict[str, str]:
    return {unicodedata.normalize("NFC", name): env_name(name) for name in AWKWARD_NAMES}


def test_terraform_env_name_rule_is_eventkits_on_awkward_names(tmp_path: Path) -> None:
    rule = expression(named({"topology.tf": parse_dir()["topology.tf"]}, "locals")["env_names"])
    assert "local.env_named" in rule, rule
    # Two rules that differ from it: the stack's old one (each character, no trim) and one without the trim.
    per_character = '{for name in local.env_named : name => upper(replace(name, "/[^A-Za-z0-9]/", "_"))}'
    untrimmed = '{for name in local.env_named : name => upper(replace(name, "/[^A-Za-z0-9]+/", "_"))}'

    values = terraform_env_names(tmp_path, {"rule": rule, "per_character": per_character, "untrimmed": untrimmed})

    assert len(_python_env_names()) == len(AWKWARD_NAMES)  # no two names are one to Terraform
    assert values["rule"] == _python_env_names()
    assert values["rule"]["v2.order..events"] == "V2_ORDER_EVENTS"
    assert values["rule"]["-order-events"] == values["rule"]["order-events-"] == "ORDER_EVENTS"
    # the check can fail: either broken rule names some awkward name differently
    assert values["per_character"] != _python_env_names()
    assert values["untrimmed"] != _python_env_names()


AWKWARD_TOPOLOGY = textwrap.dedent(
    """
    services:
      orders: {source: services/orders, target: api, signature_type: http, request_timeout_seconds: 30,
               publishes: [order-events, v2.order..events-, audit~log+9]}
      deadletters: {source: services/deadletters, target: handle_event, signature_type: http,
                    request_timeout_seconds: 60}
    topics:
      order-events: {}
      v2.order..events-: {}
      audit~log+9: {}
    subscriptions: {}
    buckets:
      uploads: {name: shop-uploads}
      renditions: {name: shop-renditions}
      raw__exports_: {name: shop-exports}
    """
)


def test_terraform_and_the_stack_name_awkward_topics_and_roles_alike(tmp_path: Path) -> None:
    topo = parse_topology(AWKWARD_TOPOLOGY, path=REPO / "topology.yaml")
    grants = {"orders": {"buckets": {"uploads": "read", "raw__exports_": "write"}}}
    _, values = evaluate(tmp_path, AWKWARD_TOPOLOGY, {"project_id": PROJECT, "service_settings": grants})
    terraform = values["service_env"]["orders"]
    stack = service_env(
        topo.services["orders"],
        topo,
        project=PROJECT,
        port=8080,
        emulators=dict.fromkeys(("pubsub", "firestore", "storage", "smtp"), "127.0.0.1:1"),
        base_env={},
    )

    assert {k: v for k, v in terraform.items() if k.startswith("TOPIC_")} == {
        "TOPIC_ORDER_EVENTS": "order-events",
        "TOPIC_V2_ORDER_EVENTS": "v2.order..events-",
        "TOPIC_AUDIT_LOG_9": "audit~log+9",
    }
    assert {k: v for k, v in terraform.items() if k.startswith("BUCKET_")} == {
        "BUCKET_UPLOADS": f"{PROJECT}-shop-uploads",
        "BUCKET_RAW_EXPORTS": f"{PROJECT}-shop-exports",
    }
    # the stack gives every service every bucket; Terraform only those granted: the names agree where both are
    assert {k for k in stack if k.startswith("TOPIC_")} == {k for k in terraform if k.startswith("TOPIC_")}
    assert {k for k in terraform if k.startswith("BUCKET_")} <= {k for k in stack if k.startswith("BUCKET_")}
    assert stack["BUCKET_RAW_EXPORTS"] == "shop-exports"
