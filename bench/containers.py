"""Benchmark: the container images as shipped: build time, time to healthy, image sizes, and each image's start.

    .venv/bin/python bench/containers.py [--runs 7] [--no-cache]

1. Build: ``docker compose build`` of every image in docker-compose.yml (``--no-cache``: from the base images up).
2. Up: ``docker compose up --detach --wait`` on free ports under a project of its own (stack/compose.py), to every
   container healthy; then ``down``.
3. Sizes: each image, and what it adds to its base image.
4. Start: each service image against a bare functions-framework image built the same way on the same base
   (``bare_dockerfile()``: the services' Dockerfile less eventkit and the service's code; functions-framework
   alone, bench/push_app/bare.py as main.py). Each run starts every image in turn (``docker run --detach`` with
   the service's compose environment, on the default bridge), timed from just before ``docker run`` (which
   creates and starts the container) to the first answered request: ``GET /ready`` for a service, ``GET /`` for
   bare, sent to the container's own address every 5 ms. Median of ``--runs``, and the ratio to bare's median.

Needs a Docker engine with Compose v2 and the base images (docs/containers.md). Figures only, never a test.
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import BENCH_OUT, REPO, machine, machine_line, write_json

from stack.compose import ComposeStack, docker, require_engine, run_docker
from stack.errors import StackError

BARE_IMAGE = "shop-bench-bare:local"
BARE_SOURCE = REPO / "bench" / "push_app" / "bare.py"
SERVICE_DOCKERFILE = REPO / "services" / "Dockerfile"
POLL_SECONDS = 0.005
START_TIMEOUT_SECONDS = 60


def bare_dockerfile() -> str:
    """The services' Dockerfile less eventkit, the service's code and /ready: functions-framework and one function."""
    text = SERVICE_DOCKERFILE.read_text()
    # No SERVICE: the bare context holds requirements.txt and main.py itself. Bare answers GET / only.
    removals = [r"ARG SERVICE\n", r'RUN test -n "\$SERVICE".*?exit 1; }\n', r"HEALTHCHECK .*?\n(?=\S)"]
    edits = [
        ("COPY constraints.txt services/${SERVICE}/requirements.tx[t] /tmp/build/",
         "COPY constraints.txt requirements.txt /tmp/build/"),
        ("COPY services/eventkit/ /tmp/build/eventkit/\n", ""),
        (" /tmp/build/eventkit \\\n", " \\\n"),
        ("COPY services/${SERVICE}/ ./", "COPY main.py ./"),
        ("ARG FUNCTION_TARGET=handle_event", "ARG FUNCTION_TARGET=bare"),
    ]  # fmt: skip
    for pattern in removals:
        text, found = re.subn(pattern, "", text, count=1, flags=re.S)
        _require(found, pattern)
    for old, new in edits:
        _require(old in text, old)
        text = text.replace(old, new)
    return text


def _require(found: object, what: str) -> None:
    if not found:
        raise SystemExit(f"{SERVICE_DOCKERFILE} changed shape ({what.strip()!r} not found): update bench/containers.py")


def build_bare(no_cache: bool) -> float:
    """The bare image, built by docker compose (the same builder as the services'); the seconds it took."""
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as folder:
        context = Path(folder)
        (context / "Dockerfile").write_text(bare_dockerfile())
        shutil.copy(REPO / "constraints.txt", context / "constraints.txt")
        (context / "requirements.txt").write_text("functions-framework\n")
        shutil.copy(BARE_SOURCE, context / "main.py")
        (context / "compose.yml").write_text(f"services:\n  bare:\n    image: {BARE_IMAGE}\n    build: .\n")
        bare = ComposeStack(context / "state", project="shop-bench-bare", compose_file=context / "compose.yml",
                            own_ports=False)  # fmt: skip
        seconds = bare.build(no_cache=no_cache)
        bare.remove_replaced_images()
        return seconds


def image_size(image: str, base: str = "python:3.12-slim") -> tuple[int, int]:
    """(the image's size, what it adds to its base image) in bytes."""
    total, base_size = (
        int(docker("image", "inspect", "--format", "{{.Size}}", name).strip()) for name in (image, base)
    )
    return total, total - base_size


def start_seconds(image: str, env: dict[str, str], path: str) -> tuple[float, float]:
    """From just before ``docker run`` to the first answer to ``GET path`` on the container's own address; and of
    that, the part after ``docker run`` returned (the container started: what its own process takes)."""
    began = time.perf_counter()
    container = docker("run", "--detach", *[f"--env={k}={v}" for k, v in env.items()], image).strip()
    started = time.perf_counter()
    try:
        address = docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", container).strip()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if _answers(address, int(env.get("PORT", "8080")), path):
                answered = time.perf_counter()
                return answered - began, answered - started
            time.sleep(POLL_SECONDS)
        raise StackError(f"{image}: no answer to GET {path} within {START_TIMEOUT_SECONDS} s")
    finally:
        run_docker("rm", "--force", container)


def _answers(host: str, port: int, path: str) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-cache", action="store_true", help="build every image from its base image up")
    args = parser.parse_args()
    print(require_engine())
    info = machine()
    print(machine_line(info))

    stack = ComposeStack(BENCH_OUT / "containers-stack", project="shop-bench-containers")
    build_seconds = stack.build(no_cache=args.no_cache)
    bare_build_seconds = build_bare(args.no_cache)
    cache = " (no cache)" if args.no_cache else ""
    print(f"build: every image {build_seconds:.1f} s{cache}; bare {bare_build_seconds:.1f} s")

    try:
        stack.up()
        print(f"up: every container healthy {stack.healthy_seconds:.1f} s after `docker compose up --detach --wait`")
    finally:
        stack.down()

    images = {name: image for name, image in stack.image_names().items() if name in stack.topology.services}
    sizes = {name: image_size(image) for name, image in [*images.items(), ("bare", BARE_IMAGE)]}
    print("\nimage sizes (MB = 10^6 bytes): the image | what it adds to python:3.12-slim")
    for name, (total, added) in sizes.items():
        print(f"  {name:<22} {total / 1e6:7.1f} | {added / 1e6:7.1f}")

    rows: dict[str, list[float]] = {name: [] for name in ["bare", *images]}
    inside: dict[str, list[float]] = {name: [] for name in rows}
    for run in range(args.runs):
        for name, image, env, path in [
            ("bare", BARE_IMAGE, {"PORT": "8080"}, "/"),
            *((name, image, stack.environment(name), "/ready") for name, image in images.items()),
        ]:
            total, after_start = start_seconds(image, env, path)
            rows[name].append(total)
            inside[name].append(after_start)
        print(f"  run {run + 1}/{args.runs} done")
    medians = {name: statistics.median(values) for name, values in rows.items()}
    inside_medians = {name: statistics.median(values) for name, values in inside.items()}
    print(f"\nstart (median of {args.runs}): from `docker run` to the first answered request, against bare | of it, "
          "after `docker run` returned (the container's own process), against bare")  # fmt: skip
    for name, median in medians.items():
        ratio, own = median / medians["bare"], inside_medians[name] / inside_medians["bare"]
        spread = f"{min(rows[name]) * 1000:.0f}-{max(rows[name]) * 1000:.0f}"
        print(f"  {name:<22} {median * 1000:5.0f} ms {ratio:5.2f}x (runs {spread} ms) | "
              f"{inside_medians[name] * 1000:5.0f} ms {own:5.2f}x")  # fmt: skip

    result: dict[str, Any] = {
        "machine": info,
        "build_seconds": build_seconds,
        "no_cache": args.no_cache,
        "bare_build_seconds": bare_build_seconds,
        "healthy_seconds": stack.healthy_seconds,
        "sizes_bytes": {name: {"image": total, "added": added} for name, (total, added) in sizes.items()},
        "start_seconds": rows,
        "start_median_seconds": medians,
        "start_ratio": {name: medians[name] / medians["bare"] for name in medians},
        "after_docker_run_seconds": inside,
        "after_docker_run_ratio": {name: inside_medians[name] / inside_medians["bare"] for name in medians},
    }
    print()
    write_json("containers", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
