"""Benchmark: the images service's Pillow pipeline against ImageMagick and libvips, on real-sized photos.

    .venv/bin/python bench/images.py [--sizes 3,6,12,24] [--workdir .local/bench-images]

Every tool makes the same three renditions (longest edge 1600, 800, 200; never upscaled; EXIF orientation applied;
metadata stripped) as progressive JPEG, quality 85, 4:2:0 chroma subsampling:

| tool | how |
| --- | --- |
| pipeline | ``services/images/imaging.py`` in one process for the whole set (draft decode, reduce + LANCZOS, cascade; |
|  | resizes in strips and encodes on a second thread: ``IMAGE_THREADS`` default, every CPU up to 4) |
| pipeline, 1 thread | the same with ``threads=1``: what one CPU does |
| pyvips | ``pyvips.Image.thumbnail(path, edge, size="down")`` per rendition, one process for the whole set |
| vipsthumbnail | the CLI, one process per rendition (it makes one size per run) |
| magick -resize | ``convert -auto-orient -strip -resize`` chained with ``-write``, one process per image |
| magick jpeg:size | the same with ``-define jpeg:size=`` (libjpeg scaled decode), the hint clamped to the image size |

It prints wall and CPU ms per image, ms per megapixel and peak RSS for each, the ratios to the pipeline, the
pipeline's peak RSS on the 12 MP photo alone, and which tools convert a JPEG with corrupt entropy data, and writes
them to ``.local/bench/images.json``. Figures only: never a test.
Installs what is missing: ImageMagick and libvips-tools with apt-get, pyvips with pip (into this Python).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO  # and services/images on sys.path: the workers import images.imaging

SIZES = {3: (2000, 1500), 6: (3000, 2000), 12: (4000, 3000), 24: (6000, 4000)}
EDGES = {"large": 1600, "medium": 800, "thumb": 200}
QUALITY = 85


# --- setup -----------------------------------------------------------------------------------------------------


def ensure_tools() -> None:
    missing = [
        pkg for cmd, pkg in (("convert", "imagemagick"), ("vipsthumbnail", "libvips-tools")) if not shutil.which(cmd)
    ]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    try:
        import pyvips  # noqa: F401
    except (ImportError, OSError):
        print("installing pyvips with pip", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "pyvips"], check=True)


def make_photos(workdir: Path, sizes: list[int]) -> tuple[list[Path], Path]:
    """Photo-like JPEGs (smooth gradients + sensor-like noise, quality 92, EXIF from a 'camera')."""
    from PIL import Image, ImageFilter

    workdir.mkdir(parents=True, exist_ok=True)
    photos = []
    for mp in sizes:
        path = workdir / f"photo-{mp}mp.jpg"
        if not path.exists():
            w, h = SIZES[mp]
            base = [Image.linear_gradient("L").resize((w, h)), Image.radial_gradient("L").resize((w, h))]
            noise = Image.effect_noise((w, h), 48).filter(ImageFilter.GaussianBlur(0.8))
            detail = Image.effect_mandelbrot((w, h), (-2.0, -1.2, 1.0, 1.2), 60)
            image = Image.merge("RGB", (Image.blend(base[0], noise, 0.35), detail, Image.blend(base[1], noise, 0.5)))
            exif = Image.Exif()
            exif[0x0112] = 1
            exif[0x010F] = "BenchCam"
            image.save(path, "JPEG", quality=92, exif=exif.tobytes())
        photos.append(path)
    corrupt = workdir / "corrupt-entropy-12mp.jpg"
    if not corrupt.exists():
        source = workdir / "photo-12mp.jpg"
        if not source.exists():
            make_photos(workdir, [12])
        data = bytearray(source.read_bytes())
        scan = data.index(b"\xff\xda")
        for offset in range(scan + 200_000, scan + 200_600, 5):
            if 0xFF not in (data[offset], data[offset - 1]):  # leave markers and byte stuffing alone
                data[offset] ^= 0x24
        corrupt.write_bytes(bytes(data))
    return photos, corrupt


# --- workers: one process for the whole set (in-process timing) ---------------------------------------------------


def worker(tool: str, out_dir: Path, files: list[Path], repeat: int) -> None:
    if tool in ("pipeline", "pipeline, 1 thread"):
        from images.imaging import convert
        from images.renditions import Encoding, RenditionSpec

        specs = tuple(RenditionSpec(label, edge) for label, edge in EDGES.items())
        threads = 1 if tool == "pipeline, 1 thread" else None  # None: the service's default

        def run(path: Path) -> None:
            with path.open("rb") as fp:
                encoding = Encoding(formats=("JPEG",), jpeg_quality=QUALITY)
                converted = convert(fp, specs, encoding=encoding, threads=threads)
            for rendition in converted.renditions:
                (out_dir / f"{path.stem}-{rendition.label}.jpg").write_bytes(rendition.data)

    elif tool == "pyvips":
        import pyvips

        def run(path: Path) -> None:
            for label, edge in EDGES.items():
                image = pyvips.Image.thumbnail(str(path), edge, height=edge, size="down")
                image.jpegsave(
                    str(out_dir / f"{path.stem}-{label}.jpg"),
                    Q=QUALITY,
                    strip=True,
                    interlace=True,
                    subsample_mode="on",
                )

    else:
        raise SystemExit(f"unknown worker tool {tool}")
    from PIL import Image

    baseline_rss = _rss_kb("VmRSS")  # interpreter + imports; the warm-up and the photos count above it
    warm_up = out_dir / "warm-up.jpg"

    Image.new("RGB", (1800, 1200), (90, 120, 150)).save(warm_up, quality=90)
    run(warm_up)  # first-call costs (plugin registration, libjpeg init) are not per-image costs
    times, cpu_times, failures = {}, {}, {}
    for path in files:
        runs, cpu_runs = [], []
        try:
            for _ in range(repeat):
                started, cpu_started = time.perf_counter(), time.process_time()
                run(path)
                runs.append((time.perf_counter() - started) * 1000)
                cpu_runs.append((time.process_time() - cpu_started) * 1000)  # every thread of the process
            times[path.name], cpu_times[path.name] = statistics.median(runs), statistics.median(cpu_runs)
        except Exception as exc:  # a tool refusing a file is a result, not a crash
            failures[path.name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    print(
        json.dumps(
            {
                "ms": times,
                "cpu_ms": cpu_times,
                "failed": failures,
                "peak_rss_kb": _rss_kb("VmHWM"),
                "baseline_rss_kb": baseline_rss,
            }
        )
    )


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run_worker(tool: str, out_dir: Path, files: list[Path], repeat: int = 1) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, __file__, "_worker", tool, str(repeat), str(out_dir), *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- CLIs: one process per image (wall time, child's peak RSS) ----------------------------------------------------


def run_cli(commands: list[list[str]], repeat: int) -> tuple[float, float, int, str | None]:
    """Median wall and CPU time of ``repeat`` runs of the commands (in sequence), the children's peak RSS, any error.

    posix_spawn, not fork: a forked child would first count this process's pages in its own peak RSS.
    """
    runs, cpu_runs, peak, error = [], [], 0, None
    for _ in range(repeat):
        started, cpu = time.perf_counter(), 0.0
        for command in commands:
            log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-images-{os.getpid()}.err"
            with log_path.open("wb") as log_file, open(os.devnull, "wb") as devnull:
                pid = os.posix_spawnp(
                    command[0],
                    command,
                    dict(os.environ),
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, devnull.fileno(), 1),
                        (os.POSIX_SPAWN_DUP2, log_file.fileno(), 2),
                    ],
                )
                _, status, usage = os.wait4(pid, 0)
            peak, cpu = max(peak, usage.ru_maxrss), cpu + usage.ru_utime + usage.ru_stime
            if os.waitstatus_to_exitcode(status) != 0:
                error = (log_path.read_text(errors="replace").strip().splitlines() or ["failed"])[-1][:160]
            log_path.unlink(missing_ok=True)
        runs.append((time.perf_counter() - started) * 1000)
        cpu_runs.append(cpu * 1000)
    return statistics.median(runs), statistics.median(cpu_runs), peak, error


def magick_commands(path: Path, out_dir: Path, size_hint: bool) -> list[list[str]]:
    from PIL import Image

    command = ["convert"]
    if size_hint:
        width, height = Image.open(path).size
        # The largest rendition's own size (what the pipeline's draft asks for), never larger than the image:
        # a hint larger than the image makes ImageMagick decode at 2×.
        scale = min(1.0, EDGES["large"] / max(width, height))
        command += ["-define", f"jpeg:size={round(width * scale)}x{round(height * scale)}"]
    command += [
        str(path),
        "-auto-orient",
        "-strip",
        "-quality",
        str(QUALITY),
        "-sampling-factor",
        "4:2:0",
        "-interlace",
        "JPEG",
    ]
    labels = list(EDGES.items())
    for index, (label, edge) in enumerate(labels):
        command += ["-resize", f"{edge}x{edge}>"]
        target = str(out_dir / f"{path.stem}-{label}.jpg")
        command += [target] if index == len(labels) - 1 else ["-write", target]
    return [command]


def vipsthumbnail_commands(path: Path, out_dir: Path) -> list[list[str]]:
    options = f"[Q={QUALITY},strip,interlace,subsample-mode=on]"
    return [
        [
            "vipsthumbnail",
            str(path),
            "--size",
            f"{edge}x{edge}>",
            "-o",
            str(out_dir / f"{path.stem}-{label}.jpg") + options,
        ]
        for label, edge in EDGES.items()
    ]


# --- the run ---------------------------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker(sys.argv[2], Path(sys.argv[4]), [Path(p) for p in sys.argv[5:]], int(sys.argv[3]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_make":
        make_photos(Path(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="3,6,12,24", help="megapixel sizes from 3,6,12,24 (default: all)")
    parser.add_argument("--workdir", type=Path, default=REPO / ".local" / "bench-images")
    parser.add_argument("--repeat", type=int, default=3, help="runs per image; the median is reported")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from _common import machine, write_json  # here, not at the top: the workers' RSS stays their own

    before = machine()

    ensure_tools()
    # Made in a child process, so this one stays small (its size would otherwise blur the CLIs' RSS).
    subprocess.run([sys.executable, __file__, "_make", str(args.workdir), args.sizes], check=True)
    photos = [args.workdir / f"photo-{mp}mp.jpg" for mp in sizes]
    corrupt = args.workdir / "corrupt-entropy-12mp.jpg"
    megapixels = {
        p.name: SIZES[int(p.stem.split("-")[1][:-2])][0] * SIZES[int(p.stem.split("-")[1][:-2])][1] / 1e6
        for p in photos
    }
    out = args.workdir / "out"
    shutil.rmtree(out, ignore_errors=True)

    results: dict[str, dict] = {}
    for tool in ("pipeline", "pipeline, 1 thread", "pyvips"):
        outcome = run_worker(tool, out / tool.replace(", ", "-").replace(" ", "-"), photos, args.repeat)
        results[tool] = {k: outcome[k] for k in ("ms", "cpu_ms", "failed")} | {"rss_kb": outcome["peak_rss_kb"]}
    for tool, make in (
        ("vipsthumbnail", lambda p, o: vipsthumbnail_commands(p, o)),
        ("magick -resize", lambda p, o: magick_commands(p, o, size_hint=False)),
        ("magick jpeg:size", lambda p, o: magick_commands(p, o, size_hint=True)),
    ):
        target = out / tool.replace(" ", "_").replace(":", "")
        target.mkdir(parents=True, exist_ok=True)
        ms, cpu_ms, peak, failed = {}, {}, 0, {}
        for photo in photos:
            elapsed, cpu, rss, error = run_cli(make(photo, target), args.repeat)
            ms[photo.name], cpu_ms[photo.name], peak = elapsed, cpu, max(peak, rss)
            if error:
                failed[photo.name] = error
        results[tool] = {"ms": ms, "cpu_ms": cpu_ms, "rss_kb": peak, "failed": failed}

    total_mp = sum(megapixels.values())
    pipeline_mean = statistics.fmean(results["pipeline"]["ms"].values())
    listed = ", ".join(f"{s} MP" for s in sizes)
    print(
        f"\n{len(photos)} photos ({listed}), {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"median of {args.repeat} runs, load average before the run {os.getloadavg()[0]:.1f}"
    )
    boxes = ", ".join(f"{k} {v}" for k, v in EDGES.items())
    print(f"renditions {boxes} px; JPEG q{QUALITY}, 4:2:0, progressive, stripped\n")
    print("| tool | ms / image | CPU ms / image | ms / MP | peak RSS (MB) | time vs pipeline |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for tool, result in results.items():
        mean = statistics.fmean(result["ms"].values())
        cpu_mean = statistics.fmean(result["cpu_ms"].values())
        per_mp = sum(result["ms"].values()) / total_mp
        print(
            f"| {tool} | {mean:.0f} | {cpu_mean:.0f} | {per_mp:.1f} | {result['rss_kb'] / 1024:.0f} "
            f"| {mean / pipeline_mean:.2f}× |"
        )
    print("\nper image (ms):")
    print("| photo | " + " | ".join(results) + " |")
    print("| --- |" + " ---: |" * len(results))
    for photo in photos:
        print(
            f"| {photo.name} ({megapixels[photo.name]:.0f} MP) | "
            + " | ".join(f"{r['ms'][photo.name]:.0f}" for r in results.values())
            + " |"
        )

    vips_ratio = pipeline_mean / statistics.fmean(results["pyvips"]["ms"].values())
    magick_ratio = statistics.fmean(results["magick -resize"]["ms"].values()) / pipeline_mean
    print(f"\npipeline vs pyvips: {vips_ratio:.2f}× the time (target ≤ 1.0×)")
    single_ratio = statistics.fmean(results["magick -resize"]["ms"].values()) / statistics.fmean(
        results["pipeline, 1 thread"]["ms"].values()
    )
    print(f"pipeline vs ImageMagick -resize: {magick_ratio:.2f}× faster (target ≥ 4×); on 1 thread {single_ratio:.2f}×")

    summary: dict[str, object] = {
        "photos": {p.name: megapixels[p.name] for p in photos},
        "repeat": args.repeat,
        "results": results,
        "pipeline_vs_pyvips": vips_ratio,
        "magick_resize_vs_pipeline": magick_ratio,
        "magick_resize_vs_pipeline_1_thread": single_ratio,
    }
    twelve = [p for p in photos if p.name == "photo-12mp.jpg"]
    if twelve:
        alone = run_worker("pipeline", out / "pipeline-12mp", twelve)
        delta = (alone["peak_rss_kb"] - alone["baseline_rss_kb"]) / 1024
        summary["pipeline_12mp_rss_mb"] = delta
        print(
            f"pipeline on the 12 MP photo alone: peak RSS {alone['peak_rss_kb'] / 1024:.0f} MB for the process "
            f"(interpreter + Pillow + eventkit imports: {alone['baseline_rss_kb'] / 1024:.0f} MB), "
            f"{delta:.0f} MB for the pipeline itself (target ≤ 64 MB)"
        )

    print(f"\n{corrupt.name} (12 MP, bytes flipped inside the entropy-coded data):")
    for tool in ("pipeline", "pyvips"):
        outcome = run_worker(tool, out / f"{tool}-corrupt", [corrupt])
        print(f"- {tool}: " + (f"refused ({outcome['failed'][corrupt.name]})" if outcome["failed"] else "converted"))
    for tool, commands in (
        ("vipsthumbnail", vipsthumbnail_commands(corrupt, out)),
        ("magick -resize", magick_commands(corrupt, out, size_hint=False)),
    ):
        _, _, _, error = run_cli(commands, 1)
        print(f"- {tool}: " + (f"refused ({error})" if error else "converted"))
    write_json("images", summary | {"machine": before})
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
