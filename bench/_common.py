"""What the benchmarks share: the machine line, a local stack to run against, served functions, a load client.

Not a benchmark itself (the leading underscore); ``bench/<name>.py`` are the commands. Figures only, never a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PROBE = REPO / "bench" / "capacity_probe"  # a sitecustomize that counts a service process's client calls
BENCH_OUT = REPO / ".local" / "bench"


def use_project_imports() -> None:
    """The repository's code importable by the tests' one rule, pyproject.toml's pytest `pythonpath`: the repository
    root (stack) and every service's folder, as functions-framework puts it on sys.path (``images.imaging``).
    In front of bench/, so a service's package wins over a script of the same name (bench/images.py)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    for entry in reversed(pyproject["tool"]["pytest"]["ini_options"]["pythonpath"]):
        if (folder := str(REPO / entry)) not in sys.path:
            sys.path.insert(0, folder)


use_project_imports()  # every bench script imports this module before the project's code


# --- the machine ------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": sys.version.split()[0],
        "load_average_before": round(os.getloadavg()[0], 2),
    }


def machine_line(info: Mapping[str, Any]) -> str:
    return (
        f"machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, "
        f"load average before the run {info['load_average_before']}"
    )


def write_json(name: str, payload: Mapping[str, Any]) -> Path:
    """``.local/bench/<name>.json``: ``payload`` and the command that produced it; the path is printed too."""
    BENCH_OUT.mkdir(parents=True, exist_ok=True)
    path = BENCH_OUT / f"{name}.json"
    command = " ".join([".venv/bin/python", f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    path.write_text(json.dumps({**payload, "command": command}, indent=2, default=str) + "\n")
    print(f"\nJSON: {path.relative_to(REPO)}")
    return path


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time the given live processes have used so far (Linux ``/proc/<pid>/stat``)."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    return total / ticks


def process_group(pgid: int) -> list[int]:
    """The live processes of a process group (a served function: functions-framework and its gunicorn workers)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    members.append(int(entry.name))
    return members


# --- a stack to run against -------------------------------------------------------------------------------------


@contextlib.contextmanager
def running_stack(
    state_dir: Path | None, *, instances: Mapping[str, int] | None = None, counted_in: Path | None = None
) -> Iterator[dict[str, Any]]:
    """stack.json of the stack in ``state_dir``; without one, a fresh stack in a temp dir, stopped at the end, with
    ``instances`` of its services and, with ``counted_in``, its service processes counting their Firestore and
    Pub/Sub calls there (bench/capacity_probe; read with :func:`probe_counts`)."""
    if state_dir is not None:
        path = Path(state_dir) / "stack.json"
        if not path.exists():
            raise SystemExit(f"no running stack in {state_dir} (no stack.json)")
        yield json.loads(path.read_text())
        return
    from stack.ports import find_free_port_base
    from stack.runner import Stack
    from stack.topology import load_topology

    temp = Path(tempfile.mkdtemp(prefix="stack-", dir=REPO / ".local"))
    extra = sum(instances.values()) if instances else 0
    runner = Stack(temp, port_base=find_free_port_base(len(load_topology().services) + extra + 4),
                   project="shop-bench", instances=instances)  # fmt: skip
    print(f"starting a local stack in {temp} ...", file=sys.stderr)
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "CAPACITY_COUNTS_DIR")}
    if counted_in is not None:  # the services inherit this process's environment; it is put back once they run
        os.environ["CAPACITY_COUNTS_DIR"] = str(counted_in)
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROBE), saved["PYTHONPATH"]]))
    try:
        runner.up()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    print(f"stack up in {runner.started_in_seconds:.1f} s", file=sys.stderr)
    try:
        yield json.loads((temp / "stack.json").read_text())
    finally:
        runner.down()
        shutil.rmtree(temp, ignore_errors=True)


def probe_counts(counts_dir: Path, service: str | None = None) -> dict[str, Counter[str]]:
    """The probe's running totals per service (the files of every process of it, instances included), so far."""
    totals: dict[str, Counter[str]] = {}
    for path in counts_dir.glob(f"{service or '*'}-*.json"):
        totals.setdefault(path.stem.rsplit("-", 1)[0], Counter()).update(json.loads(path.read_text()))
    return totals


def push_envelope(event_type: str, data: Mapping[str, Any], *, subscription: str, **event: Any) -> bytes:
    """A Pub/Sub push body as the emulator sends it, carrying one catalog event (``event``: new_event's options)."""
    import base64
    import uuid

    from eventkit.catalog import CATALOG
    from eventkit.events import encode_for_pubsub, new_event

    payload, attributes = encode_for_pubsub(new_event(CATALOG, event_type, dict(data), **event))
    message = {"data": base64.b64encode(payload).decode(), "attributes": attributes, "messageId": uuid.uuid4().hex}
    return json.dumps({"message": message, "subscription": subscription}).encode()


def client_env(info: Mapping[str, Any]) -> dict[str, str]:
    return {
        "GOOGLE_CLOUD_PROJECT": info["project"],
        "PUBSUB_EMULATOR_HOST": info["emulators"]["pubsub"],
        "FIRESTORE_EMULATOR_HOST": info["emulators"]["firestore"],
        "STORAGE_EMULATOR_HOST": info["emulators"]["storage"],
    }


# --- serving a function the way Cloud Run does (functions-framework → gunicorn) ----------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def functions_framework() -> str:
    return str(Path(sys.executable).parent / "functions-framework")


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    ready_seconds: float

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


def serve(
    target: str,
    source: Path,
    env: Mapping[str, str],
    *,
    log: Path,
    probe: tuple[str, str, bytes | None, Mapping[str, str]] = ("GET", "/robots.txt", None, {}),
    ok: tuple[int, ...] = (200, 404),
    timeout: float = 60.0,
) -> Served:
    """Start ``functions-framework --target T --signature-type http`` on a free port; wait for ``probe`` to answer.

    ``ready_seconds`` is from just before the spawn to the first answer whose status is in ``ok``.
    """
    port = free_port()
    argv = [functions_framework(), "--target", target, "--signature-type", "http", "--source", source.name]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv,
            cwd=source.parent,
            env={**env, "PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(process, port, log, 0.0)
    method, path, body, headers = probe
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{target} ({source}) exited with {process.returncode}; see {log}")
        status = _try_request(port, method, path, body, headers)
        if status in ok:
            served.ready_seconds = time.perf_counter() - started
            return served
        time.sleep(0.005)
    served.stop()
    raise SystemExit(f"{target} ({source}) did not answer within {timeout:.0f} s; see {log}")


def _try_request(port: int, method: str, path: str, body: bytes | None, headers: Mapping[str, str]) -> int | None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=dict(headers))
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


# --- a bounded async load client (HTTP/1.1 keep-alive, one coroutine per connection) -----------------------------


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "per_second": round(self.rate, 1),
            "p50_ms": round(percentile(self.latencies_ms, 50), 2),
            "p99_ms": round(percentile(self.latencies_ms, 99), 2),
            "statuses": self.statuses,
        }


def load(port: int, path: str, bodies: Sequence[bytes], headers: Mapping[str, str], concurrency: int) -> LoadResult:
    """POST every body once, ``concurrency`` requests in flight, each connection kept alive."""
    return asyncio.run(_load(port, path, bodies, headers, concurrency))


async def _load(
    port: int, path: str, bodies: Sequence[bytes], headers: Mapping[str, str], concurrency: int
) -> LoadResult:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    requests = [
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}Content-Length: {len(b)}\r\n\r\n".encode() + b
        for b in bodies
    ]
    next_index = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0

    async def connection() -> None:
        nonlocal next_index, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while next_index < len(requests):
                request = requests[next_index]
                next_index += 1
                for attempt in range(2):
                    started = time.perf_counter()
                    try:
                        writer.write(request)
                        status = await _read_response(reader)
                        break
                    except (ConnectionError, asyncio.IncompleteReadError):
                        # The server closed an idle keep-alive connection: reconnect once and resend.
                        writer.close()
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                        if attempt:
                            raise
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
                if status >= 300:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return LoadResult(len(latencies), errors, time.perf_counter() - started, latencies, statuses)


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if length is not None:
        await reader.readexactly(length)
    elif chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status
