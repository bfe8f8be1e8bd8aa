"""How a service from the topology runs locally: the functions-framework command and its environment.

The environment is the service's whole configuration, as on Cloud Run: the project, the emulator hosts,
K_SERVICE, one ``TOPIC_<NAME>`` per topic it publishes to and one ``BUCKET_<ROLE>`` per bucket.
"""

from __future__ import annotations

import compileall
import importlib.util
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from stack.envnames import bucket_var, topic_var
from stack.errors import StackError
from stack.topology import Service, Topology

ENTRY_POINT = "main.py"


def functions_framework_executable() -> Path:
    """The functions-framework console script of the Python running the stack (the project's venv)."""
    # Not resolved: a venv's python is a symlink, and its scripts sit next to the link, not the target.
    executable = Path(sys.executable).parent / "functions-framework"
    if not executable.exists():
        raise StackError(
            f"{executable} not found; install the project's requirements into this Python "
            "(pip install -r requirements.in -c constraints.txt)"
        )
    return executable


def check_sources(topology: Topology) -> None:
    for service in topology.services.values():
        if not (service.source / ENTRY_POINT).is_file():
            raise StackError(f"services.{service.name}.source: {service.source / ENTRY_POINT} does not exist")


def compile_sources(topology: Topology, *, extra: Iterable[Path] = ()) -> None:
    """Byte-compile every service's source folder and eventkit, as services/Dockerfile does (``compileall``).

    Python reads a valid .pyc even under PYTHONDONTWRITEBYTECODE (set in the images, and on some machines) but
    never writes one then, so an edited module would be compiled from source again at every start: 12–15 ms of
    each local service's cold start that a deployed container does not pay. Up-to-date files are skipped. A file
    that cannot be compiled (a syntax error, a read-only checkout) is left to the service's own start, which runs
    from source or logs the error.
    """
    folders = {service.source for service in topology.services.values()} | set(extra)
    eventkit = importlib.util.find_spec("eventkit")
    if eventkit is not None and eventkit.submodule_search_locations:
        folders.update(Path(location) for location in eventkit.submodule_search_locations)
    for folder in sorted(folders):
        compileall.compile_dir(folder, quiet=2)


def service_command(executable: Path, service: Service, port: int) -> list[str]:
    return [
        str(executable),
        "--target", service.target,
        "--signature-type", service.signature_type,
        "--source", ENTRY_POINT,
        "--host", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip


# How every service's Python runs, locally as in the container images (see services/Dockerfile);
# bench/cold_start.py starts its reference functions the same way.
PYTHON_RUNTIME_ENV = {
    "PYTHONUNBUFFERED": "1",  # log lines reach the log file as they happen
    "PYDANTIC_DISABLE_PLUGINS": "__all__",  # no pydantic plugins are installed: skip scanning every package for them
}


def service_env(
    service: Service,
    topology: Topology,
    *,
    project: str,
    port: int,
    emulators: Mapping[str, str],
    base_env: Mapping[str, str],
) -> dict[str, str]:
    """``base_env`` (the caller's environment) overlaid with everything the service is configured by."""
    env = dict(base_env)
    env.update(
        {
            "GOOGLE_CLOUD_PROJECT": project,
            "PUBSUB_EMULATOR_HOST": emulators["pubsub"],
            "FIRESTORE_EMULATOR_HOST": emulators["firestore"],
            "STORAGE_EMULATOR_HOST": emulators["storage"],
            "K_SERVICE": service.name,
            "FUNCTION_TARGET": service.target,  # as Terraform and the images set it; a shared main.py reads it
            "PORT": str(port),
            **PYTHON_RUNTIME_ENV,
            # Local-only settings: mail goes to the stack's SMTP sink; the outbox sweeper (every few
            # seconds here) publishes what was left unsent for more than a few seconds.
            "SMTP_HOST": emulators["smtp"].rsplit(":", 1)[0],
            "SMTP_PORT": emulators["smtp"].rsplit(":", 1)[1],
            "OUTBOX_SWEEP_AFTER_SECONDS": "3",
        }
    )
    env.update({topic_var(topic): topic for topic in service.publishes})
    env.update({bucket_var(bucket.role): bucket.name for bucket in topology.buckets.values()})
    return env
