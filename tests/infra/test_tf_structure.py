"""Structural rules over the parsed HCL (python-hcl2): dead lettering, OIDC, service-agent grants, no public
members except the opt-in, pinned versions, documented variables and outputs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra_support import (
    REPO,
    blocks,
    copy_config,
    expression,
    is_block,
    named,
    parse_dir,
    sub_blocks,
    top_level,
    unquote,
)

from eventkit.readiness import READY_PATH

PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
# The only push subscription resource allowed without a dead-letter policy: consumers of a dead-letter topic
# itself (the topology loader allows those); test_tf_parity proves its for_each holds nothing else.
DEAD_LETTER_CONSUMERS = "local.dead_letter_push_subscriptions"


def push_subscription_problems(parsed: Mapping[str, dict[str, Any]]) -> list[str]:
    problems = []
    for block in blocks(parsed, "resource"):
        if block.type != "google_pubsub_subscription":
            continue
        push = sub_blocks(block.body, "push_config")
        if not push:
            continue
        if not any(sub_blocks(p, "oidc_token") for p in push):
            problems.append(f"{block.address}: push_config without oidc_token")
        if expression(block.body.get("for_each")) == DEAD_LETTER_CONSUMERS:
            continue
        policies = block.body.get("dead_letter_policy")
        if not is_block(policies) or not all(p.get("dead_letter_topic") for p in policies):
            problems.append(f"{block.address}: push subscription without a dead_letter_policy (dead_letter_topic)")
        if not is_block(block.body.get("retry_policy")):
            problems.append(f"{block.address}: push subscription without retry_policy")
    return problems


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def public_member_problems(parsed: Mapping[str, dict[str, Any]]) -> list[str]:
    problems = []
    for block in blocks(parsed, "resource"):
        texts = _strings(block.body)
        if not any(member in text for text in texts for member in PUBLIC_MEMBERS):
            continue
        opt_in = (
            block.address == "google_cloud_run_v2_service_iam_member.public_orders_api"
            and expression(block.body.get("for_each")) == "local.public_services"
            and unquote(block.body.get("member")) == "allUsers"
        )
        if not opt_in:
            problems.append(f"{block.address}: grants a public member")
    return problems


def test_every_push_subscription_has_dead_letter_policy_and_oidc_token() -> None:
    parsed = parse_dir()
    subscriptions = [b for b in blocks(parsed, "resource") if b.type == "google_pubsub_subscription"]
    assert {b.name for b in subscriptions} == {"push", "dead_letter_push", "dead_letter_pull"}
    assert push_subscription_problems(parsed) == []


def test_losing_the_dead_letter_policy_fails(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    text = (config / "pubsub.tf").read_text()
    start = text.index("  dead_letter_policy {")
    end = text.index("  }\n", start) + len("  }\n")
    (config / "pubsub.tf").write_text(text[:start] + text[end:])
    assert push_subscription_problems(parse_dir(config)) == [
        "google_pubsub_subscription.push: push subscription without a dead_letter_policy (dead_letter_topic)"
    ]


def test_losing_the_oidc_token_fails(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    text = (config / "pubsub.tf").read_text()
    start = text.index("    oidc_token {")
    end = text.index("    }\n", start) + len("    }\n")
    (config / "pubsub.tf").write_text(text[:start] + text[end:])
    assert push_subscription_problems(parse_dir(config)) == [
        "google_pubsub_subscription.push: push_config without oidc_token"
    ]


def test_dead_letter_topics_grant_the_pubsub_service_agent() -> None:
    resources = {b.address: b for b in blocks(parse_dir(), "resource")}
    agent = "local.pubsub_service_agent"
    publisher = resources["google_pubsub_topic_iam_member.dead_letter_publisher"].body
    assert expression(publisher["for_each"]) == "local.dead_letter_topics"
    assert unquote(publisher["role"]) == "roles/pubsub.publisher"
    assert expression(publisher["member"]) == agent
    subscriber = resources["google_pubsub_subscription_iam_member.dead_letter_subscriber"].body
    assert expression(subscriber["for_each"]) == "local.dead_letter_source_subscription"
    assert unquote(subscriber["role"]) == "roles/pubsub.subscriber"
    assert expression(subscriber["member"]) == agent
    locals_ = named(parse_dir(), "locals")
    assert "gcp-sa-pubsub.iam.gserviceaccount.com" in locals_["pubsub_service_agent"]
    pull = resources["google_pubsub_subscription.dead_letter_pull"].body
    assert expression(pull["for_each"]) == "local.dead_letter_pulls"


def test_no_public_members_except_the_orders_opt_in() -> None:
    parsed = parse_dir()
    assert public_member_problems(parsed) == []
    variables = named(parsed, "variable")
    assert variables["public_orders_api"]["default"] is False
    locals_ = named(parsed, "locals")
    assert locals_["public_services"].startswith("${var.public_orders_api && ")


def test_a_new_public_member_fails(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    text = (config / "iam.tf").read_text()
    (config / "iam.tf").write_text(
        text.replace("member   = google_service_account.push.member", 'member   = "allAuthenticatedUsers"')
    )
    assert public_member_problems(parse_dir(config)) == [
        "google_cloud_run_v2_service_iam_member.push_invoker: grants a public member"
    ]


def test_versions_are_pinned() -> None:
    terraform = next(top_level(parse_dir(), "terraform"))
    assert re.fullmatch(r">= ?1\.([5-9]|\d\d)\.\d+", unquote(terraform["required_version"]))
    providers = terraform["required_providers"][0]
    for name in ("google", "google-beta"):
        assert unquote(providers[name]["source"]) == f"hashicorp/{name}"
        assert re.fullmatch(r"~> ?\d+\.\d+", unquote(providers[name]["version"])), providers[name]


def test_variables_and_outputs_are_described_and_documented() -> None:
    parsed = parse_dir()
    variables = named(parsed, "variable")
    outputs = named(parsed, "output")
    guide = (REPO / "docs" / "deploy.md").read_text()
    for kind, items in (("variable", variables), ("output", outputs)):
        for name, body in items.items():
            assert unquote(body.get("description", "")).strip(), f"{kind} {name} has no description"
            assert f"`{name}`" in guide, f"docs/deploy.md does not mention {kind} `{name}`"
    required = [name for name, body in variables.items() if "default" not in body]
    assert required == ["project_id"]
    example = (REPO / "terraform" / "example.tfvars").read_text()
    for name in re.findall(r"^([a-z_]+)\s*=", example, flags=re.M):
        assert name in variables, f"example.tfvars sets unknown variable {name}"


def test_cloud_run_services_are_sized_probed_and_private_by_default() -> None:
    resources = {b.address: b for b in blocks(parse_dir(), "resource")}
    service = resources["google_cloud_run_v2_service.service"].body
    assert expression(service["deletion_protection"]) == "var.deletion_protection"
    template = service["template"][0]
    container = template["containers"][0]
    [probe] = container["startup_probe"]
    [http_get] = probe["http_get"]  # the readiness answer of every service, not just an open port
    assert (unquote(http_get["path"]), http_get["port"]) == (READY_PATH, 8080)
    assert set(container["resources"][0]["limits"]) >= {"cpu", "memory"}
    assert "timeout" in template and "max_instance_request_concurrency" in template
    variables = named(parse_dir(), "variable")
    assert variables["service_defaults"]["default"] == {} and "INGRESS_TRAFFIC_INTERNAL_ONLY" in str(
        variables["service_defaults"]["type"]
    )


def test_buckets_are_locked_down() -> None:
    bucket = next(b for b in blocks(parse_dir(), "resource") if b.type == "google_storage_bucket").body
    assert bucket["uniform_bucket_level_access"] is True
    assert unquote(bucket["public_access_prevention"]) == "enforced"
    assert sub_blocks(bucket, "lifecycle_rule")


def test_the_outbox_sweepers_index_puts_the_shard_before_the_growing_timestamp() -> None:
    """Firestore's "sharded timestamps": every index holding the outbox's created_at starts with the shard, so its
    writes spread over OUTBOX_SHARDS ranges (eventkit/outbox.py asks one shard at a time in this field order)."""
    indexes = [
        [unquote(field["field_path"]) for field in sub_blocks(block.body, "fields")]
        for block in blocks(parse_dir(), "resource")
        if block.type == "google_firestore_index" and unquote(block.body["collection"]) == "outbox"
    ]
    assert indexes == [["shard", "sent", "created_at"]]
    unindexed = named(parse_dir(), "locals")["firestore_unindexed_fields"].values()
    exempt = {(unquote(entry["collection"]), unquote(entry["field"])) for entry in unindexed}
    assert {("outbox", "shard"), ("outbox", "created_at")} <= exempt  # no single-field index on either
