"""CKV_SHOP_1: a Pub/Sub push subscription needs a dead-letter policy and an OIDC token.

checkov's own GCP policies check neither. Without a dead-letter topic a poison message is redelivered until its
retention runs out; without an OIDC token the push cannot reach a private Cloud Run service. A pull subscription
(no push_config) passes: nothing is delivered from it.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


def _first_block(conf: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = conf.get(key)
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return value[0]
    return None


class PushSubscriptionDeadLetter(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure every Pub/Sub push subscription has a dead-letter policy and pushes with an OIDC token",
            id="CKV_SHOP_1",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["google_pubsub_subscription"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        push = _first_block(conf, "push_config")
        if push is None:
            return CheckResult.PASSED
        policy = _first_block(conf, "dead_letter_policy")
        if policy is None or not policy.get("dead_letter_topic"):
            self.details.append("push subscription without dead_letter_policy.dead_letter_topic")
            return CheckResult.FAILED
        if _first_block(push, "oidc_token") is None:
            self.details.append("push_config without oidc_token")
            return CheckResult.FAILED
        return CheckResult.PASSED


check = PushSubscriptionDeadLetter()
