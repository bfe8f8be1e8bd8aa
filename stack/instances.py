"""Several instances of a service on the local stack, as Cloud Run runs several, and the supervisor's plan.

``python -m stack up --instances inventory=3`` (``make up INSTANCES=inventory=3``) runs three processes of the
inventory service, each on a port of its own (stack/ports.py), and a front (stack/front.py) on the service's own
port, which hands each request to the next instance: push subscriptions, stack.json and every client keep the one
URL per service. A service with one instance (the default) runs on its port directly, with no front.
How many: the service's ``instances`` in topology.yaml (default 1), unless ``--instances`` names the service.

Every instance and every front is one entry of the supervisor's plan, so each is restarted on its own when it
crashes. The instances of a service share its log file (``logs/<service>.log``), as Cloud Logging shows one
service's instances in one stream; a front logs to ``logs/<service>.front.log``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stack.errors import StackError
from stack.ports import PortLayout
from stack.services import service_command, service_env
from stack.state import instance_name
from stack.topology import MAX_INSTANCES, Topology


def parse_instances(specs: Iterable[str]) -> dict[str, int]:
    """``["inventory=3,payments=2", "orders=2"]`` → ``{"inventory": 3, "payments": 2, "orders": 2}``."""
    counts: dict[str, int] = {}
    for spec in specs:
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, count = item.partition("=")
            if not name or not count.isdigit() or not 1 <= int(count) <= MAX_INSTANCES:
                raise StackError(f"--instances: expected SERVICE=N with N in 1..{MAX_INSTANCES}, got {item!r}")
            counts[name.strip()] = int(count)
    return counts


def check_instances(instances: Mapping[str, int], topology: Topology) -> None:
    unknown = sorted(set(instances) - set(topology.services))
    if unknown:
        raise StackError(
            f"--instances: no service named {', '.join(unknown)}; services: {', '.join(topology.services)}"
        )


def instance_counts(topology: Topology, overrides: Mapping[str, int]) -> dict[str, int]:
    """Service -> instances, for each service that runs more than one: topology.yaml's ``instances``, except
    where ``overrides`` (``--instances``) names the service (``inventory=1`` runs one, whatever the file says)."""
    check_instances(overrides, topology)
    counts = {name: overrides.get(name, service.instances) for name, service in topology.services.items()}
    return {name: count for name, count in counts.items() if count > 1}


def log_name(name: str, fronted: Iterable[str]) -> str:
    """The log file (without .log) a process writes to: its service's for an instance, ``<service>.front`` for a
    front, its own name otherwise."""
    if "." in name:
        return name.rsplit(".", 1)[0]
    return f"{name}.front" if name in set(fronted) else name


def supervision_plan(
    topology: Topology,
    layout: PortLayout,
    *,
    executable: Path,
    project: str,
    emulators: Mapping[str, str],
    base_env: Mapping[str, str],
    logs_dir: Path,
    repo_root: Path,
) -> list[dict[str, Any]]:
    """One entry per process the supervisor runs: each service's instance(s), then the fronts, in topology order.

    ``append``: the instances of one service share a log file, so none of them truncates it (the runner empties
    it before the supervisor starts).
    """
    plan: list[dict[str, Any]] = []
    fronts: list[dict[str, Any]] = []
    for service in topology.services.values():
        count = layout.instances.get(service.name, 1)
        log = str(logs_dir / f"{service.name}.log")
        if count > 1:
            numbered = [(instance_name(service.name, n), layout.instance(service.name, n)) for n in range(1, count + 1)]
        else:
            numbered = [(service.name, layout.service(service.name))]
        for name, port in numbered:
            env = service_env(service, topology, project=project, port=port, emulators=emulators, base_env=base_env)
            argv = service_command(executable, service, port)
            plan.append({"name": name, "argv": argv, "cwd": str(service.source), "env": env, "log": log})
            plan[-1]["append"] = count > 1
        if count > 1:
            argv = [sys.executable, "-m", "stack.front", "--name", service.name]
            argv += ["--port", str(layout.service(service.name))]
            argv += [arg for _, port in numbered for arg in ("--upstream", str(port))]
            front_log = str(logs_dir / f"{log_name(service.name, [service.name])}.log")
            fronts.append(
                {"name": service.name, "argv": argv, "cwd": str(repo_root), "env": dict(base_env), "log": front_log}
            )
    return plan + fronts
