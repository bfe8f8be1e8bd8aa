"""Several instances of a service under docker compose, as ``make up`` runs them: an override of the compose file.

docker-compose.yml runs one container per service. For each service that runs N > 1 (topology.yaml's
``instances``, or ``--instances``), the override written here turns it into two compose services:

    <service>-instance   the service's own container, as docker-compose.yml describes it (image, build, environment,
                         restart policy), without its published port, ``deploy.replicas: N``: containers
                         <project>-<service>-instance-1 .. -N
    <service>            the front (``python -m stack.front``, from the stack tools image) on the service's own name,
                         container port and published port, so push subscriptions, the scheduler and clients are
                         unchanged; it is healthy when an instance answers /ready through it

The front asks Docker's DNS for ``<service>-instance`` at every request (it answers with every replica's address)
and hands requests out in turn. Docker's DNS round robin alone does not spread pushes: the Pub/Sub emulator keeps
pushing to the address it first connected to (measured: 105 pushes over 70 s to three replicas, all to one).

    python -m stack.compose instances [--instances inventory=3] [--output FILE]
    docker compose -f docker-compose.yml -f FILE up --build
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

FRONT_IMAGE = "shop-stack:local"  # the stack tools image (stack/Dockerfile), which holds stack/front.py
INSTANCE_SUFFIX = "-instance"
CONTAINER_PORT = 8080
# Not copied to the instances: a published host port is the front's; a fixed container name cannot repeat.
NOT_PER_INSTANCE = ("ports", "container_name")
FRONT_HEALTHCHECK = {
    "test": ["CMD", "python", "-c",
             f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{CONTAINER_PORT}/ready', timeout=2)"],
    "interval": "3s",
    "timeout": "3s",
    "retries": 3,
    "start_period": "30s",
}  # fmt: skip


def instance_service(service: str) -> str:
    """The compose service whose replicas are ``service``'s instances."""
    return f"{service}{INSTANCE_SUFFIX}"


def front_command(service: str) -> list[str]:
    return ["python", "-m", "stack.front", "--name", service, "--host", "0.0.0.0", "--port", str(CONTAINER_PORT),
            "--upstream", f"{instance_service(service)}:{CONTAINER_PORT}"]  # fmt: skip


def instances_override(services: Mapping[str, Any], counts: Mapping[str, int]) -> str:
    """The override file (YAML) for ``counts`` (service → instances, where more than one), given the compose
    file's ``services`` as ``docker compose config --format json`` resolves them. Empty of services for no counts.
    """
    lines = ["# Written by stack/compose_instances.py: several instances of a service behind a front of its own.",
             "services:" if counts else "services: {}"]  # fmt: skip
    for service, count in counts.items():
        if service not in services:
            raise KeyError(f"{service} is not a service of the compose file")
        instance = {
            key: value for key, value in copy.deepcopy(services[service]).items() if key not in NOT_PER_INSTANCE
        }
        instance["deploy"] = {**instance.get("deploy", {}), "replicas": count}
        front = {
            "image": FRONT_IMAGE,
            "pull_policy": "never",  # built by the compose file itself (the bootstrap's image), never pulled
            "healthcheck": FRONT_HEALTHCHECK,
            "restart": "unless-stopped",
        }
        # JSON is YAML: each value on one line, with the tags that replace (not merge with) the service's own.
        lines.append(f"  {service}:")
        lines += [f"    {key}: {json.dumps(value)}" for key, value in front.items()]
        lines.append("    build: !reset null")
        lines.append(f"    command: !override {json.dumps(front_command(service))}")
        lines.append(f"    environment: !override {json.dumps({'PYTHONUNBUFFERED': '1'})}")
        depends = {instance_service(service): {"condition": "service_healthy"}}
        lines.append(f"    depends_on: !override {json.dumps(depends)}")
        lines.append(f"  {instance_service(service)}: {json.dumps(instance)}")
    return "\n".join(lines) + "\n"
