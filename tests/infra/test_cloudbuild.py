"""cloudbuild.yaml, checked offline: Cloud Build's schema (vendored in check-jsonschema), step ids and waitFor,
substitutions, and that every service in topology.yaml is built, started as Cloud Run starts it (the smoke step,
which the container layer runs for real on the images it builds), pushed and deployed with the image reference
Terraform runs. Each check also runs on a deliberately broken copy, to show it can fail.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from container_checks import (
    CLOUDBUILD_FILE,
    COMPOSE_EMULATORS,
    REPO,
    SERVICE_DOCKERFILE,
    check_cloudbuild_schema,
    cloudbuild_findings,
    docker_build_options,
    parse_stages,
    service_build_args,
    step_by_id,
)

from stack.services import service_env
from stack.topology import Service, load_topology

TOPOLOGY = load_topology()
SERVICES = list(TOPOLOGY.services.values())
SERVICE_IDS = [s.name for s in SERVICES]
REGISTRY = "${_REGION}-docker.pkg.dev/$PROJECT_ID/${_REPOSITORY}"
TAG = "$COMMIT_SHA"
MAX_TIMEOUT_SECONDS = 24 * 3600  # Cloud Build's limit


def image_ref(service: Service) -> str:
    return f"{REGISTRY}/{service.name}:{TAG}"


@pytest.fixture(scope="module")
def build() -> dict[str, Any]:
    return yaml.safe_load(CLOUDBUILD_FILE.read_text())


def steps_running(build: dict[str, Any], first_arg: str) -> list[dict[str, Any]]:
    return [s for s in build["steps"] if s.get("args", [None])[0] == first_arg and s["name"].endswith("/docker")]


def build_step_of(build: dict[str, Any], service: Service) -> dict[str, Any]:
    matches = [
        s for s in steps_running(build, "build") if image_ref(service) in docker_build_options(s).get("--tag", [])
    ]
    assert len(matches) == 1, f"{service.name}: expected one docker build tagging {image_ref(service)}"
    return matches[0]


def push_step_of(build: dict[str, Any], service: Service) -> dict[str, Any]:
    matches = [s for s in steps_running(build, "push") if s["args"][1:] == [image_ref(service)]]
    assert len(matches) == 1, f"{service.name}: expected one docker push of {image_ref(service)}"
    return matches[0]


def deploy_step(build: dict[str, Any]) -> dict[str, Any]:
    step = step_by_id(build, "deploy")
    assert step is not None, "no step with id deploy"
    return step


# --- the schema -------------------------------------------------------------------------------------------------------


def test_cloudbuild_matches_the_cloud_build_schema() -> None:
    result = check_cloudbuild_schema(CLOUDBUILD_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "breakage",
    ["env as a mapping", "waitFor as a string", "unknown step key", "timeout as a number"],
)
def test_schema_check_rejects_a_broken_copy(tmp_path: Path, build: dict[str, Any], breakage: str) -> None:
    broken = copy.deepcopy(build)
    if breakage == "env as a mapping":
        broken["steps"][0]["env"] = {"DOCKER_BUILDKIT": "1"}
    elif breakage == "waitFor as a string":
        broken["steps"][0]["waitFor"] = "-"
    elif breakage == "unknown step key":
        broken["steps"][0]["wait_for"] = ["-"]
    else:
        broken["timeout"] = 3600
    path = tmp_path / "cloudbuild.yaml"
    path.write_text(yaml.safe_dump(broken))
    assert check_cloudbuild_schema(path).returncode != 0


# --- structure: ids, waitFor, substitutions ---------------------------------------------------------------------------


def test_step_ids_waitfor_and_substitutions_are_consistent(build: dict[str, Any]) -> None:
    assert cloudbuild_findings(build) == []


def test_every_step_has_an_id(build: dict[str, Any]) -> None:
    assert [s for s in build["steps"] if not s.get("id")] == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        ("waitFor a missing step", "not the id of an earlier step"),
        ("waitFor a later step", "not the id of an earlier step"),
        ("duplicate id", "used twice"),
        ("undeclared user substitution", "_REGIONS"),
        ("shell variable not escaped", "$HOME"),
        ("unused substitution", "never used"),
    ],
)
def test_structure_check_catches_a_broken_copy(build: dict[str, Any], breakage: str, expected: str) -> None:
    broken = copy.deepcopy(build)
    steps = broken["steps"]
    if breakage == "waitFor a missing step":
        steps[-1]["waitFor"] = [*steps[-1]["waitFor"], "build-everything"]
    elif breakage == "waitFor a later step":
        steps[1]["waitFor"] = [steps[-1]["id"]]
    elif breakage == "duplicate id":
        steps[2]["id"] = steps[1]["id"]
    elif breakage == "undeclared user substitution":
        broken["images"] = [broken["images"][0].replace("${_REGION}", "${_REGIONS}")]
    elif breakage == "shell variable not escaped":
        steps[0]["args"] = [*steps[0]["args"][:-1], steps[0]["args"][-1] + "\necho $HOME\n"]
    else:
        broken["substitutions"]["_UNUSED"] = "x"
    assert any(expected in finding for finding in cloudbuild_findings(broken)), cloudbuild_findings(broken)


def test_region_and_repository_are_substitutions_and_there_is_a_timeout(build: dict[str, Any]) -> None:
    assert {"_REGION", "_REPOSITORY"} <= set(build["substitutions"])
    match = re.fullmatch(r"(\d+)s", str(build["timeout"]))
    assert match and 0 < int(match.group(1)) <= MAX_TIMEOUT_SECONDS


def test_step_images_are_pinned(build: dict[str, Any]) -> None:
    """Cloud Build's own builders (gcr.io/cloud-builders) are versioned by Google; anything else carries a tag."""
    for step in build["steps"]:
        name = step["name"]
        if name.startswith("gcr.io/cloud-builders/"):
            continue
        tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
        assert tag and tag != "latest", f"step {step['id']}: pin {name}"


# --- tests first ------------------------------------------------------------------------------------------------------


def test_unit_tests_run_with_the_pinned_dependencies_on_the_images_python(build: dict[str, Any]) -> None:
    step = step_by_id(build, "unit-tests")
    assert step is not None
    script = " ".join(step["args"])
    assert re.search(r"pip install .*-c constraints\.txt", script)
    assert re.search(r"-m pytest -m unit\b", script)
    assert step["name"] == parse_stages(SERVICE_DOCKERFILE.read_text())[-1].base, "the tests run on another Python"


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_nothing_is_pushed_before_the_unit_tests_pass(build: dict[str, Any], service: Service) -> None:
    assert "unit-tests" in push_step_of(build, service)["waitFor"]


# --- every service: build, push, deploy -------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_every_service_is_built_from_the_service_dockerfile_with_its_folder_and_target(
    build: dict[str, Any], service: Service
) -> None:
    step = build_step_of(build, service)
    options = docker_build_options(step)
    assert options["--file"] == [SERVICE_DOCKERFILE.relative_to(REPO).as_posix()]
    assert step["args"][-1] == ".", "the build context is the repository root"
    build_args = dict(arg.split("=", 1) for arg in options.get("--build-arg", []))
    assert build_args == service_build_args(service)
    # In parallel: a build waits for nothing but the input check.
    assert all(not wanted.startswith(("build-", "push-", "unit-")) for wanted in step["waitFor"])


# --- every image started as Cloud Run starts it, before its push -----------------------------------------------------

SMOKE_SCRIPT = "cloudbuild/smoke-image.sh"


def smoke_step_of(build: dict[str, Any], service: Service) -> dict[str, Any] | None:
    matches = [s for s in build["steps"] if s.get("args", [])[:2] == [SMOKE_SCRIPT, image_ref(service)]]
    return matches[0] if len(matches) == 1 else None


def smoke_env(service: Service) -> dict[str, str]:
    """What the service checks at start-up, named and valued as the local stack and Terraform name them."""
    local = service_env(service, TOPOLOGY, project="p", port=8080, emulators=COMPOSE_EMULATORS, base_env={})
    wanted = {k: v for k, v in local.items() if k.startswith(("TOPIC_", "BUCKET_")) or k in ("K_SERVICE",)}
    return {**wanted, "FUNCTION_TARGET": service.target, "GOOGLE_CLOUD_PROJECT": "$PROJECT_ID"}


def smoke_findings(build: dict[str, Any], service: Service) -> list[str]:
    """What keeps ``service``'s image from being started and checked before it is pushed (empty: nothing)."""
    step = smoke_step_of(build, service)
    if step is None:
        return [f"no step runs {SMOKE_SCRIPT} {image_ref(service)}"]
    findings = []
    if not step["name"].endswith("/docker") or step.get("entrypoint") != "bash":
        findings.append(f"{step['id']}: run the script with bash in the docker builder, got {step['name']}")
    if build_step_of(build, service)["id"] not in step.get("waitFor", []):
        findings.append(f"{step['id']}: does not wait for the image's build")
    if step["id"] not in push_step_of(build, service)["waitFor"]:
        findings.append(f"{push_step_of(build, service)['id']}: pushes without waiting for {step['id']}")
    env = dict(arg.split("=", 1) for arg in step["args"][2:])
    if env != smoke_env(service):
        findings.append(f"{step['id']}: environment {env} is not {smoke_env(service)}")
    return findings


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_every_image_answers_as_on_cloud_run_before_it_is_pushed(build: dict[str, Any], service: Service) -> None:
    assert smoke_findings(build, service) == []
    assert (REPO / SMOKE_SCRIPT).is_file()


@pytest.mark.parametrize("breakage", ["no smoke step", "pushed before it", "before the build", "a topic missing"])
def test_smoke_check_catches_a_broken_copy(build: dict[str, Any], breakage: str) -> None:
    broken = copy.deepcopy(build)
    orders = TOPOLOGY.services["orders"]
    step = smoke_step_of(broken, orders)
    assert step is not None
    if breakage == "no smoke step":
        broken["steps"].remove(step)
    elif breakage == "pushed before it":
        push_step_of(broken, orders)["waitFor"] = [build_step_of(broken, orders)["id"], "unit-tests"]
    elif breakage == "before the build":
        step["waitFor"] = ["check-inputs"]
    else:
        step["args"] = [arg for arg in step["args"] if not arg.startswith("TOPIC_")]
    assert smoke_findings(broken, orders) != []


def test_the_deploy_waits_for_every_push(build: dict[str, Any]) -> None:
    pushes = {push_step_of(build, service)["id"] for service in SERVICES}
    assert pushes <= set(deploy_step(build)["waitFor"])


def test_images_lists_exactly_the_service_images(build: dict[str, Any]) -> None:
    assert sorted(build["images"]) == sorted(image_ref(s) for s in SERVICES)


def test_no_image_is_built_for_a_service_outside_the_topology(build: dict[str, Any]) -> None:
    tags = [tag for step in steps_running(build, "build") for tag in docker_build_options(step).get("--tag", [])]
    assert sorted(tags) == sorted(image_ref(s) for s in SERVICES)


# --- the deploy is Terraform, with the images just pushed -------------------------------------------------------------


def _terraform_variables() -> set[str]:
    names: set[str] = set()
    for path in (REPO / "terraform").glob("*.tf"):
        for block in hcl2.load(path.open()).get("variable", []):
            names |= {name.strip('"') for name in block}
    return names


def _deploy_vars(build: dict[str, Any]) -> dict[str, str]:
    script = " ".join(deploy_step(build)["args"])
    return dict(re.findall(r'-var "(\w+)=([^"]*)"', script))


def test_deploy_applies_terraform_with_the_new_image_tag(build: dict[str, Any]) -> None:
    step = deploy_step(build)
    assert step["name"].startswith("hashicorp/terraform:")
    assert step.get("dir") == "terraform"
    script = " ".join(step["args"])
    assert "terraform init" in script and "terraform apply" in script
    assert _deploy_vars(build) == {
        "project_id": "$PROJECT_ID",
        "region": "${_REGION}",
        "artifact_registry_repository": "${_REPOSITORY}",
        "image_tag": TAG,
    }


def test_deploy_sets_only_variables_terraform_declares(build: dict[str, Any]) -> None:
    assert set(_deploy_vars(build)) - _terraform_variables() == set()


def test_terraform_runs_the_image_references_cloud_build_pushes(build: dict[str, Any]) -> None:
    """terraform/run.tf names each service's image <registry url>/<service>:<image_tag>; with the deploy's
    variables that must be exactly what was pushed."""
    locals_ = {}
    for path in (REPO / "terraform").glob("*.tf"):
        for block in hcl2.load(path.open()).get("locals", []):
            locals_.update(block)
    values = {f"var.{name}": value for name, value in _deploy_vars(build).items()}
    registry = locals_["artifact_registry_url"].strip('"')
    registry = re.sub(r"\$\{(var\.\w+)\}", lambda m: values[m.group(1)], registry)
    assert registry == REGISTRY
    pattern = re.search(
        r'"\$\{local\.artifact_registry_url\}/\$\{name\}:\$\{var\.image_tag\}"', locals_["service_images"]
    )
    assert pattern, f"terraform's image naming changed: {locals_['service_images']}"
