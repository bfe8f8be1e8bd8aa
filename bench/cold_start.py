"""Benchmark: cold start, bare functions-framework vs every service in topology.yaml.

    .venv/bin/python bench/cold_start.py [--runs 7] [--state-dir .local] [--services orders,inventory] [--baseline DIR]

Each service is started as the stack starts it (``functions-framework --target T --signature-type http`` in its
source folder, with ``stack.services.service_env``: the same environment, against the stack's emulators; a fresh
stack in a temp dir unless ``--state-dir`` names a running one; its code byte-compiled first, as the images ship it)
on a free port, and timed from just before the spawn to the first HTTP answer (``GET /robots.txt``, which
functions-framework answers only once the target module is imported and gunicorn's worker is up). Then, at once, one
realistic first request (``bench/first_requests.py``: it reads or writes Firestore, publishes, reads Cloud Storage
or sends mail, so it builds the Google clients the way a first user's request does), timed from the same spawn to
its answer. Median of ``--runs`` runs each (the services taken in turn, bare included, run after run), and the ratio
to the bare baseline (``bench/push_app/bare.py``, whose first request is a push it answers at once). A reference
row, ``bench/push_app/bare_pydantic.py``, adds only pydantic and one envelope model to bare: the share of the 1.5×
budget the validation library takes before any code of this project. Then ``python
-X importtime -c 'import main'`` per source: the total and the top 10 modules by cumulative import time.
``--baseline DIR`` (another checkout) adds each service as that checkout has it, on its own eventkit
(``PYTHONPATH``), interleaved with this one's: a before/after in one run. Figures only, never a test.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import BENCH_OUT, REPO, client_env, machine, machine_line, running_stack, serve, write_json
from first_requests import FirstRequest, first_request

BARE = Path(__file__).resolve().parent / "push_app" / "bare.py"
# A reference, not a baseline: bare plus pydantic's import and one envelope model (what the library alone costs).
BARE_PYDANTIC = BARE.with_name("bare_pydantic.py")


def importtime(source: Path, env: dict[str, str]) -> dict[str, Any]:
    module = source.stem
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=source.parent,
        env={**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(source.parent), env.get("PYTHONPATH")]))},
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = (part.strip() for part in line.split(":", 1)[1].split("|", 2))
        rows.append((name, int(self_us), int(cumulative_us)))
    total = next((cum for name, _, cum in rows if name == module), sum(s for _, s, _ in rows))
    top = sorted((r for r in rows if r[0] != module), key=lambda r: r[2], reverse=True)[:10]
    return {
        "total_ms": round(total / 1000, 1),
        "top": [{"module": n, "cumulative_ms": round(c / 1000, 1)} for n, _, c in top],
    }


def answer_seconds(port: int, request: FirstRequest) -> float:
    """Send ``request`` and wait for its answer; the seconds it took. A status outside ``request.ok`` stops the run."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(request.method, request.path, body=request.body, headers=dict(request.headers))
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status not in request.ok:
        raise SystemExit(f"first request {request.what}: HTTP {response.status} {body[:300]!r}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=7, help="starts per service, interleaved across services; the median is reported"
    )
    parser.add_argument("--state-dir", type=Path, help="a running stack's state dir (default: start one)")
    parser.add_argument("--services", help="comma-separated subset of topology.yaml's services")
    parser.add_argument("--baseline", type=Path, help="another checkout whose services start beside these")
    args = parser.parse_args()
    info = machine()

    from stack.services import PYTHON_RUNTIME_ENV, compile_sources, service_env
    from stack.topology import load_topology

    topology = load_topology()
    compile_sources(topology, extra=[BARE.parent])  # as the images ship them, and as `stack up` leaves them
    names = args.services.split(",") if args.services else list(topology.services)
    log_dir = BENCH_OUT / "cold_start-logs"
    results: list[dict[str, Any]] = []
    with running_stack(args.state_dir) as stack:
        # The services' own Python settings, so the reference row pays for pydantic as the services do.
        base = {**os.environ, **client_env(stack), **PYTHON_RUNTIME_ENV}
        candidates: list[tuple[str, Path, str, dict[str, str]]] = [
            ("bare functions-framework", BARE, "bare", base),
            ("bare + a pydantic envelope model (reference)", BARE_PYDANTIC, "bare_pydantic", base),
        ]
        buckets = stack["buckets"]
        for name in names:
            service = topology.services[name]
            env = service_env(
                service, topology, project=stack["project"], port=0, emulators=stack["emulators"], base_env=os.environ
            )
            candidates.append((name, service.source / "main.py", service.target, env))
            if args.baseline:
                folder = args.baseline.resolve() / service.source.relative_to(REPO)
                baseline_env = {**env, "PYTHONPATH": str(args.baseline.resolve() / "services" / "eventkit")}
                candidates.append((f"{name} [baseline]", folder / "main.py", service.target, baseline_env))
        if args.baseline:  # byte-compiled as the images ship them, as this checkout's are above
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(args.baseline / "services")], check=True)
        times: dict[str, list[float]] = {name: [] for name, *_ in candidates}
        firsts: dict[str, list[float]] = {name: [] for name, *_ in candidates}
        requests: dict[str, Any] = {}
        for run in range(args.runs):  # interleaved: a slow spell of the shared machine hits bare and services alike
            for name, source, target, env in candidates:
                kind = "bare" if target.startswith("bare") else name.removesuffix(" [baseline]")
                request = requests[name] = first_request(kind, stack["project"], buckets)
                served = serve(target, source, env, log=log_dir / f"{name.replace(' ', '_')}-{run}.log")
                try:
                    first = answer_seconds(served.port, request)
                finally:
                    served.stop()
                times[name].append(served.ready_seconds * 1000)
                firsts[name].append((served.ready_seconds + first) * 1000)
        for name, source, target, env in candidates:
            imports = importtime(source, env)
            print(
                f"  {name}: {statistics.median(times[name]):.0f} ms (runs {[round(t) for t in times[name]]}), "
                f"first request answered at {statistics.median(firsts[name]):.0f} ms, "
                f"import {imports['total_ms']:.0f} ms",
                file=sys.stderr,
            )
            results.append(
                {
                    "name": name,
                    "target": f"{source}:{target}",
                    "ready_ms": times[name],
                    "median_ms": round(statistics.median(times[name]), 1),
                    "first_request": requests[name].what,
                    "first_request_ms": firsts[name],
                    "first_request_median_ms": round(statistics.median(firsts[name]), 1),
                    "importtime": imports,
                }
            )

    bare, bare_first = results[0]["median_ms"], results[0]["first_request_median_ms"]
    print(f"\ncold start: spawn → first answer, median of {args.runs} runs; " + machine_line(info) + "\n")
    print(
        "| service | ready (median ms) | min–max ms | vs bare | within 1.5× | first request | answered at (median ms) "
        "| vs bare | `import main` (ms) |"
    )
    print("| --- | ---: | ---: | ---: | :---: | --- | ---: | ---: | ---: |")
    for r in results:
        ratio, first_ratio = r["median_ms"] / bare, r["first_request_median_ms"] / bare_first
        r["vs_bare"], r["first_request_vs_bare"] = round(ratio, 2), round(first_ratio, 2)
        print(
            f"| {r['name']} | {r['median_ms']:.0f} | {min(r['ready_ms']):.0f}–{max(r['ready_ms']):.0f} | "
            f"{ratio:.2f}× | {'yes' if ratio <= 1.5 else 'no'} | {r['first_request']} | "
            f"{r['first_request_median_ms']:.0f} | {first_ratio:.2f}× | {r['importtime']['total_ms']:.0f} |"
        )
    print("\ntop 10 imports by cumulative time (ms), per source:")
    seen = set()
    for r in results[1:]:
        source = r["target"].rsplit(":", 1)[0]
        if source in seen:
            continue
        seen.add(source)
        top = ", ".join(f"{t['module']} {t['cumulative_ms']:.0f}" for t in r["importtime"]["top"])
        folder = Path(source).parent
        print(f"- {folder.relative_to(REPO) if folder.is_relative_to(REPO) else folder}: {top}")
    write_json(
        "cold_start",
        {
            "machine": info,
            "runs": args.runs,
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
