"""The images as shipped: built by docker compose from services/Dockerfile as Cloud Build builds them, and run.

The flows themselves (an order, an upload, a telemetry batch, a poison message and its replay) are the tests of
the other layers marked ``compose``, run against these containers; this file checks the images themselves.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import image_samples as samples
import pytest
import yaml
from import_check import source_modules
from waiting import wait_for

from images.image_records import IMAGE_SOURCES, source_id
from images.image_settings import ImageSettings
from stack.compose import ComposeStack, base_images, compose_config, docker, run_docker
from stack.errors import StackError
from stack.seed import seed_catalog
from stack.topology import load_topology

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = load_topology()
SERVICES = list(TOPOLOGY.services)
IMPORT_CHECK = REPO / "tests" / "import_check.py"
SMOKE_SCRIPT = "cloudbuild/smoke-image.sh"
EMULATORS = ("pubsub", "firestore", "storage", "mail")
# A line a service must not log while it starts: a structured ERROR (or worse), gunicorn's own, a traceback.
ERROR_LINE = re.compile(r'"severity": ?"(ERROR|CRITICAL|ALERT|EMERGENCY)"|\[(ERROR|CRITICAL)\]|^Traceback', re.M)
KILLED = 137  # 128 + SIGKILL: what a container that ignored SIGTERM exits with once the stop timeout is over


def _run(*args: str, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False)


# --- what the images hold ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_holds_every_module_of_its_service_and_of_eventkit(stack_runner: ComposeStack, service: str) -> None:
    """The check that would have caught `No module named 'eventkit.catalog'` before any container crash-looped."""
    source = TOPOLOGY.services[service].source
    app_modules = source_modules(source)
    eventkit_modules = source_modules(REPO / "services" / "eventkit" / "eventkit", package="eventkit")
    env = [f"--env={name}={value}" for name, value in stack_runner.environment(service).items()]
    image = stack_runner.image_names()[service]

    python = ["docker", "run", "--rm", "--interactive", *env, "--entrypoint", "python", image, "-I", "-"]
    result = _run(*python, "--path", "/app", *app_modules, *eventkit_modules, stdin=IMPORT_CHECK.read_text())

    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout)
    assert {name: r["error"] for name, r in imported.items() if "error" in r} == {}
    assert all(imported[name]["file"].startswith("/app/") for name in app_modules)
    assert all(imported[name]["file"].startswith("/venv/lib/") for name in eventkit_modules)


def test_the_service_dockerfile_without_a_service_stops_naming_the_build_arg(tmp_path: Path) -> None:
    """SERVICE is required: without it, COPY services/${SERVICE}/ would put every service's folder in /app."""
    name = f"shop-no-service-{uuid.uuid4().hex[:8]}:local"
    build = f"context: {REPO}\n      dockerfile: services/Dockerfile"  # no args: SERVICE is empty
    (tmp_path / "compose.yml").write_text(f"services:\n  unnamed:\n    image: {name}\n    build:\n      {build}\n")
    stack = ComposeStack(tmp_path / "state", project="shop-no-service", compose_file=tmp_path / "compose.yml",
                         own_ports=False)  # fmt: skip
    try:
        with pytest.raises(StackError, match=r"build arg SERVICE='': pass --build-arg SERVICE="):
            stack.build()
    finally:
        run_docker("rmi", name)


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_runs_as_a_non_root_user(stack_runner: ComposeStack, service: str) -> None:
    container = stack_runner.container_id(service)

    uid = docker("exec", container, "python", "-c", "import os; print(os.getuid(), os.getgid())").split()

    assert uid == ["10001", "10001"]


# --- started as Cloud Run starts them (the smoke steps of cloudbuild.yaml) ----------------------------------------


def _smoke_steps() -> dict[str, list[str]]:
    """Service → the arguments of its smoke step in cloudbuild.yaml (image reference first)."""
    build = yaml.safe_load((REPO / "cloudbuild.yaml").read_text())
    steps = {}
    for step in build["steps"]:
        args = step.get("args", [])
        if args[:1] == [SMOKE_SCRIPT]:
            service = re.fullmatch(r".*/([a-z-]+):\$COMMIT_SHA", args[1]).group(1)  # type: ignore[union-attr]
            steps[service] = args[1:]
    return steps


@pytest.mark.parametrize("service", SERVICES)
def test_the_cloud_build_smoke_step_passes_on_the_image(stack_runner: ComposeStack, service: str) -> None:
    _image, *env = _smoke_steps()[service]
    env = [pair.replace("$PROJECT_ID", "shop-smoke") for pair in env]

    result = _run("bash", SMOKE_SCRIPT, stack_runner.image_names()[service], *env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "ready in" in result.stdout


def test_the_smoke_step_fails_an_image_that_crashes_at_import(stack_runner: ComposeStack, tmp_path: Path) -> None:
    """The orders image with eventkit's catalog left out, as a package list written by hand once shipped it."""
    base = stack_runner.image_names()["orders"]
    broken = f"shop-smoke-broken-{uuid.uuid4().hex[:8]}:local"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base}\nUSER root\nRUN rm -r /venv/lib/python3*/site-packages/eventkit/catalog\nUSER 10001:10001\n"
    )
    docker("build", "--quiet", "--tag", broken, str(tmp_path), timeout=300)
    try:
        _image, *env = _smoke_steps()["orders"]
        result = _run("bash", SMOKE_SCRIPT, broken, *[pair.replace("$PROJECT_ID", "p") for pair in env])
    finally:
        run_docker("rmi", broken)

    assert result.returncode != 0
    assert "stopped before it was ready" in result.stderr
    assert "No module named 'eventkit.catalog'" in result.stderr


# --- they start clean and stop promptly ----------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_logs_no_error_while_starting(stack_runner: ComposeStack, service: str) -> None:
    assert ERROR_LINE.findall(stack_runner.start_logs[service]) == []


def test_the_error_check_sees_gunicorns_and_the_services_errors() -> None:
    gunicorn = "[2026-12-06 01:59:48 +0000] [1] [ERROR] Control server error: [Errno 13] Permission denied"
    service = '{"severity": "ERROR", "message": "rejected: unreadable delivery"}'
    assert len(ERROR_LINE.findall("\n".join([gunicorn, service, '{"severity": "INFO", "message": "error"}']))) == 2


def test_services_stop_on_sigterm_and_start_healthy_again(stack_runner: ComposeStack) -> None:
    """What Cloud Run does to an instance it scales in, and `docker compose down` to every container."""
    stopped = stack_runner.compose("stop", "--timeout", "10", *SERVICES)
    assert stopped.returncode == 0, stopped.stderr
    exit_codes = {service: _exit_code(stack_runner.container_id(service)) for service in SERVICES}

    restarted = stack_runner.compose("up", "--detach", "--wait", "--wait-timeout", "120", *SERVICES)

    assert exit_codes == dict.fromkeys(SERVICES, 0), "gunicorn exits 0 on SIGTERM; 137 is a kill at the timeout"
    assert restarted.returncode == 0, restarted.stderr
    assert {row["Service"]: row["Health"] for row in stack_runner.ps() if row["Service"] in SERVICES} == dict.fromkeys(
        SERVICES, "healthy"
    )


def test_emulator_containers_stop_on_sigterm_without_waiting_out_the_timeout(tmp_path: Path) -> None:
    emulators = ComposeStack(tmp_path / "emulators", project=f"shop-emulators-{uuid.uuid4().hex[:8]}")
    try:
        started = emulators.compose("up", "--detach", "--wait", "--wait-timeout", "180", *EMULATORS)
        assert started.returncode == 0, started.stderr

        stopped = emulators.compose("stop", "--timeout", "10", *EMULATORS)

        assert stopped.returncode == 0, stopped.stderr
        exit_codes = {name: _exit_code(emulators.container_id(name)) for name in EMULATORS}
        assert KILLED not in exit_codes.values(), exit_codes
    finally:
        emulators.compose("down", "--volumes", "--timeout", "1")


def _exit_code(container: str) -> int:
    return int(docker("inspect", "--format", "{{.State.ExitCode}}", container).strip())


# --- the operator tools on the compose stack -----------------------------------------------------------------------


def test_a_running_compose_stack_is_recorded_for_the_operator_tools(stack_runner: ComposeStack, tmp_path: Path) -> None:
    """`python -m stack.compose record` then `python -m dlq` / `python -m stack demo` against the containers."""
    recorded = _run(sys.executable, "-m", "stack.compose", "record", "--project", stack_runner.project,
                    "--state-dir", str(tmp_path))  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr
    record = json.loads((tmp_path / "stack.json").read_text())
    session = json.loads((stack_runner.state_dir / "stack.json").read_text())
    same = ("project", "emulators", "services", "topics", "subscriptions", "buckets")
    assert {key: record[key] for key in same} == {key: session[key] for key in same}

    seed_catalog(record["emulators"]["firestore"], record["project"])  # the demo's products, as the bootstrap seeds
    listed = _run(sys.executable, "-m", "dlq", "--state-dir", str(tmp_path), "list", "--json")
    demo = _run(sys.executable, "-m", "stack", "demo", "--state-dir", str(tmp_path))

    assert listed.returncode == 0, listed.stderr
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "CONFIRMED" in demo.stdout and session["emulators"]["mailpit"] in demo.stdout


def test_the_images_backfill_runs_from_the_images_image_in_its_environment(
    stack_runner: ComposeStack, stack: dict[str, Any], db: Any
) -> None:
    """As the backfill job runs in Google Cloud: the images service's image, its environment, other settings."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    gcs = storage.Client(project=stack["project"], credentials=AnonymousCredentials())
    uploads, prefix = stack["buckets"]["uploads"], f"backfill-{uuid.uuid4().hex[:8]}/"
    blob = gcs.bucket(uploads).blob(f"{prefix}photo.jpg")
    blob.upload_from_string(samples.photo_jpeg(320, 240))
    source = db.collection(IMAGE_SOURCES).document(source_id(uploads, blob.name))
    wait_for(lambda: source.get().exists, seconds=30)
    container = stack_runner.container_id("images")

    def dry_run(*env: str) -> str:
        return docker("exec", *env, container, "python", "-m", "images.backfill", "--dry-run", "--prefix", prefix)

    current, other = dry_run(), dry_run("--env", "IMAGE_FORMATS=jpeg,webp,avif")

    spec, avif_spec = ImageSettings.from_env({}).spec, ImageSettings.from_env({"IMAGE_FORMATS": "jpeg,webp,avif"}).spec
    assert f"under spec {spec}" in current and "listed 1, current 1, stale 0" in current, current
    assert f"under spec {avif_spec}" in other and f"stale\t{blob.name}#{blob.generation}" in other, other


# --- repeated runs do not fill the disk ------------------------------------------------------------------------------


def test_a_rebuild_removes_the_image_it_replaced_and_nothing_else(tmp_path: Path) -> None:
    """ComposeStack.remove_replaced_images, on a compose file of its own: what stack_runner.down() does each run."""
    name = f"shop-rebuild-{uuid.uuid4().hex[:8]}:local"
    (tmp_path / "compose.yml").write_text(f"services:\n  tool:\n    image: {name}\n    build: .\n")
    kept = f"shop-rebuild-kept-{uuid.uuid4().hex[:8]}:local"

    def build(content: str) -> str:
        (tmp_path / "Dockerfile").write_text(f"FROM python:3.12-slim\nRUN echo {content} > /built\n")
        stack = ComposeStack(tmp_path / "state", project="shop-rebuild", compose_file=tmp_path / "compose.yml",
                             own_ports=False)  # fmt: skip
        stack.build()
        stack.remove_replaced_images()
        return docker("image", "inspect", "--format", "{{.Id}}", name).strip()

    try:
        first = build("one")
        docker("tag", first, kept)  # still tagged elsewhere: must survive
        second = build("two")
        third = build("three")

        assert len({first, second, third}) == 3
        assert run_docker("image", "inspect", second).returncode != 0, "the replaced image is still there"
        assert run_docker("image", "inspect", first).returncode == 0, "an image tagged elsewhere was removed"
    finally:
        run_docker("rmi", name, kept)


def test_the_base_images_ci_provides_are_what_the_stack_pulls(stack_runner: ComposeStack) -> None:
    """`python -m stack.compose base-images`: .ci/run pulls these (or builds stand-ins); never an image we build."""
    config = compose_config()
    pulled = {config["services"][name]["image"] for name in EMULATORS}
    bases = {
        line.split()[1]
        for dockerfile in (REPO / "services" / "Dockerfile", REPO / "stack" / "Dockerfile")
        for line in dockerfile.read_text().splitlines()
        if line.startswith("FROM ")
    }

    assert base_images() == sorted(pulled | bases)
    assert not set(base_images()) & set(stack_runner.image_names().values())
