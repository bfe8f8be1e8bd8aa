"""The system in containers: docker-compose.yml driven from Python, for the container test layer and the benchmarks.

    stack = ComposeStack(state_dir, project="shop-test-123")
    stack.build()     # docker compose build: every image the compose file builds (the images Cloud Build ships)
    stack.up()        # up -d --wait, then <state_dir>/stack.json, the record `make up` writes, so the tests,
                      # `python -m dlq --state-dir` and `python -m stack demo --state-dir` work on it unchanged
    stack.down()      # the containers' logs kept in <state_dir>/logs, down -v, the images a rebuild replaced removed

It runs under its own project name, with every port published on a free host port (an override file in the state
dir), so it runs beside a `make up` stack and beside a `docker compose up` of the compose file itself. The
built images keep the names the compose file gives them (``shop-<service>:local``), so repeated runs replace
them rather than pile up.

    python -m stack.compose record [--state-dir .local/compose]   # a running `docker compose up`, recorded: then
        # `python -m dlq --state-dir .local/compose list`, `python -m stack demo --state-dir .local/compose` work on it
    python -m stack.compose base-images     # the images the compose file and the Dockerfiles start FROM
    python -m stack.compose instances [--instances inventory=3] [--output FILE]
        # the override that runs several instances of a service (topology.yaml's `instances`, or the option's)
        # behind a front (stack/compose_instances.py): docker compose -f docker-compose.yml -f FILE up --build

``ComposeStack(..., instances={"inventory": 3})`` runs that override too (topology.yaml's counts when not given).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stack import state
from stack.compose_instances import instance_service, instances_override
from stack.emulators import REPO_ROOT
from stack.errors import StackError
from stack.instances import instance_counts, parse_instances
from stack.ports import SERVICE_OFFSET, find_free_port_base
from stack.state import StackInfo
from stack.topology import Topology, load_topology

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
OVERRIDE_FILE = "compose.override.yml"
INSTANCES_FILE = "compose.instances.yml"
CONTAINER_PORT = 8080  # every service listens here inside its container (compose sets PORT)
# The emulators' ports inside the compose network, and what stack.json calls them.
EMULATOR_PORTS = {"pubsub": ("pubsub", 8085), "firestore": ("firestore", 8086), "storage": ("storage", 4443),
                  "smtp": ("mail", 1025), "mailpit": ("mail", 8025)}  # fmt: skip
UP_TIMEOUT_SECONDS = 240


def run_docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, check=False
        )
    except FileNotFoundError:
        raise StackError("docker is not on PATH: the container layer needs Docker Engine with Compose v2") from None


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    """``docker ARGS`` → its stdout; a failure says what failed and what the command printed."""
    result = run_docker(*args, timeout=timeout)
    if check and result.returncode != 0:
        raise StackError(f"docker {' '.join(args[:3])} ... failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def require_engine() -> str:
    """The engine's version, or a StackError saying there is no engine to talk to."""
    try:
        version = docker("version", "--format", "{{.Server.Version}}", timeout=30).strip()
    except StackError as error:
        raise StackError(f"no Docker engine answers ({error}); start Docker, or see docs/containers.md") from None
    compose = docker("compose", "version", "--short", timeout=30, check=False).strip()
    if not compose:
        raise StackError("`docker compose` (Compose v2) is not installed: see docs/containers.md")
    return f"engine {version}, compose {compose}"


def compose_config(compose_file: Path = COMPOSE_FILE, *overrides: Path) -> dict[str, Any]:
    """The compose file (and overrides) as Compose resolves it (anchors merged, ports and build in long form)."""
    files = [f"--file={path}" for path in (compose_file, *overrides)]
    return json.loads(docker("compose", *files, "config", "--format", "json"))


def write_instances_override(path: Path, counts: dict[str, int], compose_file: Path = COMPOSE_FILE) -> Path:
    """The override running ``counts`` (service → instances) behind fronts (stack/compose_instances.py), at ``path``."""
    path.write_text(instances_override(compose_config(compose_file)["services"], counts))
    return path


def base_images(compose_file: Path = COMPOSE_FILE) -> list[str]:
    """Every image the stack needs from a registry: the emulators' and the Dockerfiles' FROM images."""
    config = compose_config(compose_file)
    built = {spec["image"] for spec in config["services"].values() if "build" in spec and "image" in spec}
    images = {spec["image"] for spec in config["services"].values() if "image" in spec} - built
    for spec in config["services"].values():
        if "build" in spec:
            dockerfile = Path(spec["build"]["context"]) / spec["build"]["dockerfile"]
            images.update(re.findall(r"^FROM\s+(?:--\S+\s+)?(\S+)", dockerfile.read_text(), flags=re.M))
    return sorted(images)


class ComposeStack:
    def __init__(
        self,
        state_dir: Path,
        *,
        project: str = "shop",
        compose_file: Path = COMPOSE_FILE,
        topology_path: Path | None = None,
        own_ports: bool = True,
        instances: dict[str, int] | None = None,
    ) -> None:
        """``own_ports=False``: the compose file's own ports, e.g. to record a `docker compose up` already running.
        ``instances``: service → instances, over topology.yaml's ``instances`` (which count when not given)."""
        self.state_dir = Path(state_dir).resolve()
        self.project = project
        self.compose_file = compose_file
        self.topology: Topology = load_topology(topology_path)
        self.logs_dir = self.state_dir / "logs"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.instances = instance_counts(self.topology, instances or {})
        self._files = [compose_file]
        if self.instances:
            self._files.append(write_instances_override(self.state_dir / INSTANCES_FILE, self.instances, compose_file))
        self._config = compose_config(*self._files)
        if own_ports:
            self._files.append(self._write_override())
        self._replaced: dict[str, str] = {}  # image name → the id it had before build()
        self.build_seconds: float | None = None
        self.healthy_seconds: float | None = None
        self.start_logs: dict[str, str] = {}  # service → what it logged from its start until the stack was healthy

    # --- lifecycle ------------------------------------------------------------------------------------------------

    def build(self, *, no_cache: bool = False) -> float:
        """``docker compose build``; the seconds it took. Its output goes to <state_dir>/build.log."""
        self._replaced = self._image_ids()
        began = time.monotonic()
        log = self.state_dir / "build.log"
        with log.open("w") as out:
            command = ["docker", *self._compose_args(), "build", *(["--no-cache"] if no_cache else [])]
            built = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        if built.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise StackError(f"docker compose build failed ({built.returncode}); {log} ends:\n{tail}")
        self.build_seconds = time.monotonic() - began
        return self.build_seconds

    def up(self) -> StackInfo:
        """Start everything and wait until every container is healthy; write and return the stack's record."""
        began = time.monotonic()
        result = self.compose(
            "up", "--detach", "--wait", "--wait-timeout", str(UP_TIMEOUT_SECONDS), timeout=UP_TIMEOUT_SECONDS + 60
        )
        if result.returncode != 0:
            self.save_logs()
            raise StackError(
                f"docker compose up failed ({result.returncode}): {result.stderr.strip()[-2000:]}\n"
                f"containers: {self.ps()}\nlogs: {self.logs_dir}"
            )
        self.healthy_seconds = time.monotonic() - began
        self.start_logs = {name: self.logs(name) for name in self.service_containers()}
        info = self.info()
        state.write_info(info)
        return info

    def down(self) -> None:
        """Keep the logs, remove the containers, network and volumes, and the images a rebuild replaced."""
        self.save_logs()
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=180)
        state.clear(self.state_dir)
        self.remove_replaced_images()

    def remove_replaced_images(self) -> list[str]:
        """Remove the images this stack's build() replaced (nothing tags them any more); the ids removed.

        Their layers go with them unless a newer image shares them (the dependency layers usually do).
        """
        current = set(self._image_ids().values())
        removed = []
        for image_id in sorted(set(self._replaced.values()) - current):
            tags = docker("image", "inspect", "--format", "{{len .RepoTags}}", image_id, check=False).strip()
            if tags == "0" and run_docker("rmi", image_id).returncode == 0:  # in use by a container: kept
                removed.append(image_id)
        self._replaced = {}
        return removed

    # --- what runs where ------------------------------------------------------------------------------------------

    def info(self) -> StackInfo:
        project = self._config["services"]["bootstrap"]["environment"]["GOOGLE_CLOUD_PROJECT"]
        emulators = {name: self.published(service, port) for name, (service, port) in EMULATOR_PORTS.items()}
        emulators["storage"] = f"http://{emulators['storage']}"
        emulators["mailpit"] = f"http://{emulators['mailpit']}"
        return StackInfo.for_topology(
            self.topology,
            project,
            emulators=emulators,
            services={name: f"http://{self.published(name, CONTAINER_PORT)}" for name in self.topology.services},
            pids={},  # containers, not processes of this machine
            logs=self.logs_dir,
            state_dir=self.state_dir,
        )

    def published(self, service: str, port: int) -> str:
        """``127.0.0.1:P``: where ``service``'s container ``port`` is published on this machine."""
        address = docker(*self._compose_args(), "port", service, str(port)).strip().splitlines()
        if not address:
            raise StackError(f"{service}:{port} is not published")
        return address[0].replace("0.0.0.0:", "127.0.0.1:")

    @staticmethod
    def push_endpoint(service: str) -> str:
        """Where Pub/Sub, inside the compose network, pushes to reach ``service``."""
        return f"http://{service}:{CONTAINER_PORT}/"

    def host_address(self) -> str:
        """This machine's address on the stack's network: where a container reaches a server run by a test."""
        network = f"{self.project}_default"
        return docker("network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}", network).strip()

    def environment(self, service: str) -> dict[str, str]:
        """The environment the compose file gives ``service``."""
        return dict(self._config["services"][service].get("environment") or {})

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``docker compose ARGS`` on this stack's project and files."""
        return run_docker(*self._compose_args(), *args, timeout=timeout)

    def ps(self) -> list[dict[str, Any]]:
        out = docker(*self._compose_args(), "ps", "--all", "--format", "json", check=False)
        rows = [json.loads(line) for line in out.splitlines() if line.strip().startswith("{")]
        return [{key: row.get(key) for key in ("Service", "State", "Health", "ExitCode")} for row in rows]

    def container_id(self, service: str) -> str:
        return docker(*self._compose_args(), "ps", "--all", "--quiet", service).strip()

    def instance_containers(self, service: str) -> list[str]:
        """The ids of the containers running ``service``'s code: its instances' (several), or its own."""
        name = instance_service(service) if service in self.instances else service
        return docker(*self._compose_args(), "ps", "--all", "--quiet", name).split()

    def service_containers(self) -> list[str]:
        """The compose services that run the topology's code: each service, or its instances and front."""
        return [*self.topology.services, *(instance_service(name) for name in self.instances)]

    def logs(self, service: str, *, since: datetime | None = None) -> str:
        args = ["logs", "--no-color", "--no-log-prefix"]
        if since is not None:
            args += ["--since", since.isoformat()]
        return docker(*self._compose_args(), *args, service, check=False, timeout=60)

    def save_logs(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        for service in self._config["services"]:
            (self.logs_dir / f"{service}.log").write_text(self.logs(service))

    def wait_until_quiet(self, quiet_for: float = 0.6, at_most: float = 15.0) -> None:
        """Wait (bounded) until no service has logged anything for ``quiet_for`` seconds (see tests/conftest.py)."""
        services = self.service_containers()
        deadline = time.monotonic() + at_most
        while time.monotonic() < deadline:
            since = datetime.now(UTC)
            time.sleep(quiet_for)
            out = docker(*self._compose_args(), "logs", "--since", since.isoformat(), *services, check=False)
            if not out.strip():
                return

    def image_names(self) -> dict[str, str]:
        """Service → the image name it runs, for every service the compose file builds."""
        return {name: spec["image"] for name, spec in self._config["services"].items() if "build" in spec}

    # --- plumbing -------------------------------------------------------------------------------------------------

    def _compose_args(self) -> list[str]:
        return ["compose", "--project-name", self.project, *(f"--file={path}" for path in self._files)]

    def _write_override(self) -> Path:
        """Every published port moved to a free host port (still on 127.0.0.1 only), chosen once: a port Docker
        picked itself would change whenever a container restarts."""
        published = [(name, port["target"]) for name, spec in self._config["services"].items()
                     for port in spec.get("ports", [])]  # fmt: skip
        first = find_free_port_base(len(published)) + SERVICE_OFFSET  # a free block below the ephemeral range
        lines = ["# Written by stack/compose.py: the compose file's ports, each on a free host port.", "services:"]
        for index, (name, target) in enumerate(published):
            if index == 0 or published[index - 1][0] != name:
                lines += [f"  {name}:", "    ports: !override"]
            lines.append(f'      - "127.0.0.1:{first + index}:{target}"')
        override = self.state_dir / OVERRIDE_FILE
        override.write_text("\n".join(lines) + "\n")
        return override

    def _image_ids(self) -> dict[str, str]:
        ids = {}
        for image in set(self.image_names().values()):
            found = docker("image", "inspect", "--format", "{{.Id}}", image, check=False).strip()
            if found:
                ids[image] = found
        return ids


def _main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.compose", description="the compose stack, from Python")
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("record", help="write stack.json for a running `docker compose up` (project shop)")
    record.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".local" / "compose")
    record.add_argument("--project", default="shop", help="the compose project name (default: %(default)s)")
    commands.add_parser("base-images", help="the images the stack pulls: the emulators' and the FROM lines")
    scaled = commands.add_parser("instances", help="write the override that runs several instances of services")
    scaled.add_argument("--instances", action="append", default=[], metavar="SERVICE=N[,...]",
                        help="over topology.yaml's `instances` (default: topology.yaml's alone)")  # fmt: skip
    scaled.add_argument("--output", type=Path, default=REPO_ROOT / ".local" / INSTANCES_FILE)
    args = parser.parse_args(argv)
    try:
        if args.command == "base-images":
            print("\n".join(base_images()))
            return 0
        if args.command == "instances":
            counts = instance_counts(load_topology(), parse_instances(args.instances))
            args.output.parent.mkdir(parents=True, exist_ok=True)
            write_instances_override(args.output, counts)
            described = ", ".join(f"{name} {count}" for name, count in counts.items()) or "one of each service"
            print(f"wrote {args.output} ({described}); run: docker compose -f docker-compose.yml -f {args.output} up")
            return 0
        info = ComposeStack(args.state_dir, project=args.project, own_ports=False).info()
    except StackError as error:
        print(f"stack.compose: error: {error}", file=sys.stderr)
        return 1
    state.write_info(info)
    print(f"recorded {args.project}: {info.state_dir / state.STACK_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
