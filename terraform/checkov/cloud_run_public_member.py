"""CKV_SHOP_2: no Cloud Run (v1 or v2) IAM grant to allUsers or allAuthenticatedUsers.

checkov's CKV_GCP_102 looks at google_cloud_run_service_iam_* only; the v2 resources go unchecked. The one
permitted exception (the opt-in public orders API) is skipped in the code with its justification.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

PUBLIC = ("allUsers", "allAuthenticatedUsers")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


class CloudRunPublicMember(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure no Cloud Run service is invokable by allUsers or allAuthenticatedUsers",
            id="CKV_SHOP_2",
            categories=[CheckCategories.IAM],
            supported_resources=[
                f"google_cloud_run{version}_service_iam_{kind}"
                for version in ("", "_v2")
                for kind in ("member", "binding", "policy")
            ],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        for key in ("member", "members", "policy_data"):
            for text in _strings(conf.get(key)):
                if any(public in text for public in PUBLIC):
                    self.details.append(f"{key} grants {text!r}")
                    return CheckResult.FAILED
        return CheckResult.PASSED


check = CloudRunPublicMember()
