"""``python -m stack exec SERVICE -- COMMAND``: a command in a running local stack's service environment.

The environment is the one the stack gave the service (stack/services.py: project, emulator hosts, topics,
buckets, and whatever the shell that ran ``make up`` set, such as ``IMAGE_FORMATS``), and the working directory is
the service's source folder, so an operator tool that ships with a service (``python -m images.backfill``) runs
against the local stack exactly as it would beside the service in Google Cloud.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from stack.errors import StackError
from stack.services import service_env
from stack.state import read_info
from stack.topology import load_topology


def run_in_service_env(state_dir: Path, name: str, argv: Sequence[str]) -> int:
    if not argv:
        raise StackError("nothing to run: python -m stack exec SERVICE -- COMMAND [ARG ...]")
    info = read_info(state_dir)
    if info is None:
        raise StackError(f"no local stack recorded in {state_dir} (stack.json); start one with `make up DETACH=1`")
    topology = load_topology()
    service = topology.services.get(name)
    if service is None or name not in info.services:
        raise StackError(f"no service {name!r} in the running stack; it runs: {', '.join(sorted(info.services))}")
    port = int(info.services[name].rsplit(":", 1)[1])
    env = service_env(service, topology, project=info.project, port=port, emulators=info.emulators, base_env=os.environ)
    try:
        return subprocess.run(list(argv), cwd=service.source, env=env, check=False).returncode
    except OSError as exc:
        raise StackError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
