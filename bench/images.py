"""Benchmark: the images service's Pillow pipeline against libvips and ImageMagick, and its formats' cost and bytes.

    .venv/bin/python bench/images.py [--sizes 3,6,12,24] [--repeat 3] [--workdir .local/bench-images]

Three parts, all on photo-like JPEGs it generates (3, 6, 12, 24 MP) and every rendition size (longest edge 1600,
800, 200; never upscaled; EXIF orientation applied; metadata stripped):

1. **Formats** (``_image_quality.py``): the same resized images encoded as JPEG q85, WebP and AVIF at a grid of
   qualities by the service's own encoder; CPU ms per encode, bytes, and SSIM against the uncompressed resize; then
   the lowest WebP and AVIF quality whose mean SSIM is at least JPEG q85's ("looks the same"). ``--no-study`` skips
   it and uses the service's default qualities (or ``--webp-quality``/``--avif-quality``).
2. **Speed**: every tool below makes one photo's whole set; the photos are sent to each tool in turn, repeated
   ``--repeat`` times (medians), so load from other work on the machine falls on every tool alike:

| tool | how |
| --- | --- |
| pipeline jpeg+webp | ``imaging.convert`` with the default formats, JPEG q85 + WebP at the chosen quality: the |
|  | default set. ``IMAGE_THREADS`` default (every CPU up to 4); ``, 1 thread``: ``threads=1`` |
| pyvips jpeg+webp | ``pyvips.Image.thumbnail(path, edge, size="down")`` per size (shrink-on-load from the file), |
|  | copied to memory once, then ``jpegsave`` and ``webpsave`` (``effort=4``, as the pipeline's WebP ``method=4``) |
| pyvips jpeg+webp, cascade | the largest size from the file, each smaller one ``thumbnail_image`` of the one before |
| pipeline / pyvips jpeg+webp+avif | the same with AVIF too (pyvips: ``heifsave(compression="av1")`` at the |
|  | pipeline's libaom speed); only where this libvips can write AVIF |
| pipeline, pipeline 1 thread, pyvips | JPEG only, as the bench measured before the formats (continuity) |
| vipsthumbnail | the CLI, one process per rendition (it makes one size per run), JPEG only |
| magick -resize | ``convert -auto-orient -strip -resize`` chained with ``-write``, one process per image, JPEG only |
| magick jpeg:size | the same with ``-define jpeg:size=`` (libjpeg scaled decode), the hint clamped to the image size |

   JPEG everywhere: q85, progressive, optimized Huffman tables, 4:2:0. In-process tools each run in their own
   long-lived worker process (``_image_tools.py``); CLIs are spawned per photo.
3. **Steps** (``_image_steps.py``): the pipeline's CPU time per step (decode, each resize, each encode) on one
   thread, so what the default set costs can be read step by step.

It prints everything, with the load average before and after the speed part, and writes it to
``.local/bench/images.json``; also the pipeline's peak RSS on the 12 MP photo alone and which tools convert a JPEG
with corrupt entropy data. Figures only: never a test.
Installs what is missing: ImageMagick and libvips-tools with apt-get, pyvips and scikit-image (at a pinned version)
with pip, into this Python — benchmark-only, not in the project's requirements.
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
import tempfile
from pathlib import Path

from _common import REPO  # and services/images on sys.path: the workers import images.imaging
from _image_tools import EDGES, JPEG_QUALITY, Tool, Worker, cli_commands, run_cli, serve_worker, tool_from_json

SIZES = {3: (2000, 1500), 6: (3000, 2000), 12: (4000, 3000), 24: (6000, 4000)}


# --- setup -----------------------------------------------------------------------------------------------------


def ensure_tools() -> None:
    missing = [
        pkg for cmd, pkg in (("convert", "imagemagick"), ("vipsthumbnail", "libvips-tools")) if not _answers(cmd)
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


def _answers(command: str) -> bool:
    """Whether the real tool is there: ``-version``/``--version`` names it (a stand-in ``convert`` may be on PATH)."""
    if not shutil.which(command):
        return False
    flag = "-version" if command == "convert" else "--version"
    result = subprocess.run([command, flag], capture_output=True, text=True)
    return result.returncode == 0 and ("ImageMagick" in result.stdout or "vips" in result.stdout)


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


# --- the run ---------------------------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        serve_worker(tool_from_json(sys.argv[2]), Path(sys.argv[3]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_part":
        result = PARTS[sys.argv[2]](**json.loads(sys.argv[3]))
        Path(sys.argv[4]).write_text(json.dumps(result))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_make":
        make_photos(Path(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="3,6,12,24", help="megapixel sizes from 3,6,12,24 (default: all)")
    parser.add_argument("--workdir", type=Path, default=REPO / ".local" / "bench-images")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over every photo and tool; medians reported")
    parser.add_argument("--no-study", action="store_true", help="skip the formats study (part 1)")
    parser.add_argument("--study-repeat", type=int, default=3, help="encodes per measurement in the study")
    parser.add_argument("--webp-quality", type=int, help="WebP quality for part 2 (default: the study's choice)")
    parser.add_argument("--avif-quality", type=int, help="AVIF quality for part 2 (default: the study's choice)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from _common import machine, write_json  # here, not at the top: the workers' RSS stays their own

    before = machine()
    ensure_tools()
    # Made in a child process, so this one stays small (its size would otherwise blur the CLIs' RSS).
    subprocess.run([sys.executable, __file__, "_make", str(args.workdir), args.sizes], check=True)
    photos = [args.workdir / f"photo-{mp}mp.jpg" for mp in sizes]
    corrupt = args.workdir / "corrupt-entropy-12mp.jpg"
    megapixels = {p.name: SIZES[mp][0] * SIZES[mp][1] / 1e6 for p, mp in zip(photos, sizes, strict=True)}
    out = args.workdir / "out"
    shutil.rmtree(out, ignore_errors=True)
    summary: dict[str, object] = {"photos": megapixels, "repeat": args.repeat}

    # 1. Formats: which qualities look the same as JPEG q85, and what each costs.
    qualities = default_qualities()
    if not args.no_study:
        study = in_child("study", workdir=str(args.workdir), repeat=args.study_repeat)
        summary["quality_study"] = study
        qualities |= {fmt: choice["quality"] for fmt, choice in study["chosen"].items() if choice}
    qualities |= {fmt: q for fmt, q in (("WEBP", args.webp_quality), ("AVIF", args.avif_quality)) if q is not None}
    summary["qualities"] = qualities

    # 2. Speed: every tool on every photo, interleaved.
    groups = speed_groups(qualities, avif=avif_in_vips())
    tools = [tool for group in groups.values() for tool in group]
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\nspeed: {len(tools)} tools × {len(photos)} photos × {args.repeat} rounds; load average {load_before}")
    results = compare(tools, photos, args.repeat, out)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    listed = ", ".join(f"{s} MP" for s in sizes)
    print(
        f"\n{len(photos)} photos ({listed}), {before['nproc']} CPUs, Python {before['python']}, median of "
        f"{args.repeat} interleaved rounds; load average (1, 5, 15 min) {' '.join(load_before)} before, "
        f"{' '.join(load_after)} after"
    )
    boxes = ", ".join(f"{k} {v}" for k, v in EDGES.items())
    print(
        f"renditions {boxes} px, every size in each format; JPEG q{JPEG_QUALITY} 4:2:0 progressive optimized, "
        f"WebP q{qualities['WEBP']} (method/effort 4), AVIF q{qualities['AVIF']}; stripped"
    )
    for title, group in groups.items():
        print_group(title, [t.name for t in group], results, photos, megapixels)
    ratios = print_ratios(results, groups)
    summary |= {"results": results, "ratios": ratios, "load_average": {"before": load_before, "after": load_after}}
    # Continuity with the figures before the formats (docs/images.md): the same keys, JPEG only.
    summary["pipeline_vs_pyvips"] = ratios["jpeg: pipeline vs pyvips"]
    summary["magick_resize_vs_pipeline"] = ratios["jpeg: magick -resize vs pipeline"]
    summary["magick_resize_vs_pipeline_1_thread"] = ratios["jpeg: magick -resize vs pipeline, 1 thread"]

    # 3. Steps: where the default set's time goes.
    summary["steps_cpu_ms"] = in_child(
        "steps", photos=[str(p) for p in photos], qualities=qualities, repeat=args.repeat, megapixels=megapixels
    )

    twelve = [p for p in photos if p.name == "photo-12mp.jpg"]
    if twelve:
        print()
        summary["pipeline_12mp_rss_mb"] = {}
        for tool in (groups["default set"][0], groups["JPEG only"][0]):
            worker = Worker(Path(__file__), tool, out / f"{tool.folder()}-12mp")
            worker.convert(twelve[0])
            alone = worker.finish()
            delta = (alone["peak_rss_kb"] - alone["baseline_rss_kb"]) / 1024
            summary["pipeline_12mp_rss_mb"][tool.name] = delta
            print(
                f"{tool.name} on the 12 MP photo alone: peak RSS {alone['peak_rss_kb'] / 1024:.0f} MB for the "
                f"process (interpreter + imports: {alone['baseline_rss_kb'] / 1024:.0f} MB), {delta:.0f} MB for the "
                "pipeline itself (target ≤ 64 MB)"
            )

    print(f"\n{corrupt.name} (12 MP, bytes flipped inside the entropy-coded data):")
    corrupt_tools = [groups["default set"][0], groups["default set"][2], *groups["JPEG only"][3:5]]
    outcomes = compare(corrupt_tools, [corrupt], 1, out / "corrupt")
    for name, outcome in outcomes.items():
        print(f"- {name}: " + (f"refused ({outcome['failed'][corrupt.name]})" if outcome["failed"] else "converted"))
    write_json("images", summary | {"machine": before})
    return 0


# --- part 1: formats --------------------------------------------------------------------------------------------


def default_qualities() -> dict[str, int]:
    from images.renditions import Encoding

    encoding = Encoding()
    return {"JPEG": JPEG_QUALITY, "WEBP": encoding.webp_quality, "AVIF": encoding.avif_quality}


def in_child(part: str, **kwargs: object) -> dict:
    """Run a part in a child process and return its result. Its memory (numpy arrays, decoded photos) must not
    count in this process's peak RSS: Linux carries that high-water mark into a spawned CLI's ``ru_maxrss``."""
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        subprocess.run([sys.executable, __file__, "_part", part, json.dumps(kwargs), result.name], check=True)
        return json.loads(Path(result.name).read_text())


def quality_study(workdir: str, repeat: int) -> dict:
    from _image_quality import (
        Source,
        ensure_scikit_image,
        make_dead_leaves_jpeg,
        print_summary,
        real_photos,
        run_study,
        summarise,
    )

    from images.imaging import encode

    ensure_scikit_image()
    sources = [
        Source("bench", Path(workdir) / "photo-12mp.jpg"),
        Source("dead leaves", make_dead_leaves_jpeg(Path(workdir) / "dead-leaves-12mp.jpg", *SIZES[12])),
        *(Source("photo", path) for path in real_photos()),
    ]
    print(f"formats: {len(sources)} photos (" + ", ".join(f"{s.kind} {s.path.name}" for s in sources) + ")")
    study, chosen = run_study(sources, EDGES.values(), encode, repeat)
    summary = summarise(study, chosen)
    print_summary(summary)
    return summary


# --- part 2: speed ----------------------------------------------------------------------------------------------


def avif_in_vips() -> bool:
    """Whether this libvips writes AVIF (libheif with an AV1 encoder); asked in a child, as pyvips loads libvips."""
    probe = "import pyvips; pyvips.Image.black(16, 16, bands=3).heifsave_buffer(compression='av1')"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def speed_groups(qualities: dict[str, int], *, avif: bool) -> dict[str, list[Tool]]:
    from images.imaging import AVIF_SPEED

    both, every = ("JPEG", "WEBP"), ("JPEG", "WEBP", "AVIF")
    groups = {
        "default set": [
            Tool("pipeline jpeg+webp", "pipeline", both, qualities=qualities),
            Tool("pipeline jpeg+webp, 1 thread", "pipeline", both, threads=1, qualities=qualities),
            Tool("pyvips jpeg+webp", "pyvips", both, qualities=qualities),
            Tool("pyvips jpeg+webp, cascade", "pyvips", both, cascade=True, qualities=qualities),
        ],
        "with AVIF": [Tool("pipeline jpeg+webp+avif", "pipeline", every, qualities=qualities)],
        "JPEG only": [
            Tool("pipeline", "pipeline"),
            Tool("pipeline, 1 thread", "pipeline", threads=1),
            Tool("pyvips", "pyvips"),
            Tool("vipsthumbnail", "vipsthumbnail"),
            Tool("magick -resize", "magick"),
            Tool("magick jpeg:size", "magick jpeg:size"),
        ],
    }
    if avif:
        groups["with AVIF"].append(
            Tool("pyvips jpeg+webp+avif", "pyvips", every, qualities=qualities, avif_speed=AVIF_SPEED)
        )
    return groups


def compare(tools: list[Tool], photos: list[Path], repeat: int, out: Path) -> dict[str, dict]:
    """Each photo through every tool in turn, ``repeat`` rounds, the order rotated per photo and round; medians."""
    script = Path(__file__)
    workers = {t.name: Worker(script, t, out / t.folder()) for t in tools if t.in_process}
    runs: dict[str, dict[str, dict[str, list[float]]]] = {
        t.name: {p.name: {"ms": [], "cpu_ms": []} for p in photos} for t in tools
    }
    failed: dict[str, dict[str, str]] = {t.name: {} for t in tools}
    cli_rss = dict.fromkeys((t.name for t in tools), 0)
    for round_index in range(repeat):
        for index, photo in enumerate(photos):
            shift = (round_index + index) % len(tools)
            for tool in tools[shift:] + tools[:shift]:
                if tool.in_process:
                    answer = workers[tool.name].convert(photo)
                else:
                    target = out / tool.folder()
                    target.mkdir(parents=True, exist_ok=True)
                    ms, cpu_ms, rss, error = run_cli(cli_commands(tool, photo, target))
                    answer = {"error": error} if error else {"ms": ms, "cpu_ms": cpu_ms}
                    cli_rss[tool.name] = max(cli_rss[tool.name], rss)
                if "error" in answer:
                    failed[tool.name][photo.name] = answer["error"]
                else:
                    runs[tool.name][photo.name]["ms"].append(answer["ms"])
                    runs[tool.name][photo.name]["cpu_ms"].append(answer["cpu_ms"])
    results = {}
    for tool in tools:
        rss = workers[tool.name].finish()["peak_rss_kb"] if tool.in_process else cli_rss[tool.name]
        timed = {name: values for name, values in runs[tool.name].items() if values["ms"]}
        results[tool.name] = {
            "ms": {name: statistics.median(v["ms"]) for name, v in timed.items()},
            "cpu_ms": {name: statistics.median(v["cpu_ms"]) for name, v in timed.items()},
            "rss_kb": rss,
            "failed": failed[tool.name],
        }
    return results


def mean_ms(result: dict, key: str = "ms") -> float:
    return statistics.fmean(result[key].values()) if result[key] else float("nan")


def print_group(title: str, names: list[str], results: dict, photos: list[Path], megapixels: dict) -> None:
    reference = results[names[0]]
    print(f"\n{title}:\n")
    print(f"| tool | ms / image | CPU ms / image | ms / MP | CPU ms / MP | peak RSS (MB) | time vs {names[0]} |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        result = results[name]
        total_mp = sum(megapixels[p] for p in result["ms"]) or float("nan")
        print(
            f"| {name} | {mean_ms(result):.0f} | {mean_ms(result, 'cpu_ms'):.0f} "
            f"| {sum(result['ms'].values()) / total_mp:.1f} | {sum(result['cpu_ms'].values()) / total_mp:.1f} "
            f"| {result['rss_kb'] / 1024:.0f} | {mean_ms(result) / mean_ms(reference):.2f}× |"
        )
        for photo, error in result["failed"].items():
            print(f"|  | failed on {photo}: {error} | | | | | |")
    print("\nper image (ms, wall / CPU):\n")
    print("| photo | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for photo in photos:
        cells = []
        for name in names:
            result = results[name]
            cells.append(
                f"{result['ms'][photo.name]:.0f} / {result['cpu_ms'][photo.name]:.0f}"
                if photo.name in result["ms"]
                else "failed"
            )
        print(f"| {photo.name} ({megapixels[photo.name]:.0f} MP) | " + " | ".join(cells) + " |")


def print_ratios(results: dict, groups: dict[str, list[Tool]]) -> dict[str, float]:
    def ratio(a: str, b: str, key: str = "ms") -> float:
        return mean_ms(results[a], key) / mean_ms(results[b], key)

    vips = min(("pyvips jpeg+webp", "pyvips jpeg+webp, cascade"), key=lambda name: mean_ms(results[name]))
    ratios = {
        "default set: pipeline vs pyvips per size": ratio("pipeline jpeg+webp", "pyvips jpeg+webp"),
        "default set: pipeline vs pyvips cascade": ratio("pipeline jpeg+webp", "pyvips jpeg+webp, cascade"),
        "default set: pipeline vs the faster pyvips": ratio("pipeline jpeg+webp", vips),
        "default set: pipeline vs the faster pyvips, CPU": ratio("pipeline jpeg+webp", vips, "cpu_ms"),
        "jpeg: pipeline vs pyvips": ratio("pipeline", "pyvips"),
        "jpeg: magick -resize vs pipeline": ratio("magick -resize", "pipeline"),
        "jpeg: magick -resize vs pipeline, 1 thread": ratio("magick -resize", "pipeline, 1 thread"),
    }
    if "pyvips jpeg+webp+avif" in results:
        ratios["with AVIF: pipeline vs pyvips"] = ratio("pipeline jpeg+webp+avif", "pyvips jpeg+webp+avif")
    goal = ratios["default set: pipeline vs the faster pyvips"]
    cpu = ratios["default set: pipeline vs the faster pyvips, CPU"]
    print(f"\ndefault set (JPEG + WebP): pipeline {goal:.2f}× the time of the faster pyvips ({vips}; goal ≤ 1.0×),")
    print(f"{cpu:.2f}× its CPU time;")
    print(
        f"against pyvips per size {ratios['default set: pipeline vs pyvips per size']:.2f}×, cascade "
        f"{ratios['default set: pipeline vs pyvips cascade']:.2f}×"
    )
    if "with AVIF: pipeline vs pyvips" in ratios:
        print(f"with AVIF too, pipeline vs pyvips: {ratios['with AVIF: pipeline vs pyvips']:.2f}× the time")
    print(
        f"JPEG only, as before: pipeline vs pyvips {ratios['jpeg: pipeline vs pyvips']:.2f}× the time (target ≤ 1.0×); "
        f"vs ImageMagick -resize {ratios['jpeg: magick -resize vs pipeline']:.2f}× faster (target ≥ 4×), on 1 thread "
        f"{ratios['jpeg: magick -resize vs pipeline, 1 thread']:.2f}×"
    )
    del groups
    return ratios


# --- part 3: steps ----------------------------------------------------------------------------------------------


def steps(photos: list[str], qualities: dict[str, int], repeat: int, megapixels: dict[str, float]) -> dict:
    from _image_steps import profile, vips_profile

    paths, formats = [Path(p) for p in photos], ("JPEG", "WEBP")
    pipeline = profile(paths, formats, qualities, EDGES, repeat)
    vips = vips_profile(paths, formats, qualities, EDGES, repeat)
    print_steps("the pipeline's steps for the default set, on one thread", pipeline, megapixels)
    print_steps("pyvips' steps for the same set (cascade; decode and resize on its threads)", vips, megapixels)
    print_step_kinds({"pipeline": pipeline, "pyvips": vips})
    return {"pipeline": pipeline, "pyvips": vips}


def print_step_kinds(tools: dict[str, dict[str, dict[str, float]]]) -> None:
    """Decoding and resizing, and each format's encodes, summed over the sizes: mean CPU ms per photo."""

    def kind(step: str) -> str:
        return " ".join(step.split()[:2]) if step.startswith("encode") else "decode + resize"

    print("\nper photo, summed over the sizes (CPU ms, mean over the photos):\n")
    print("| step | " + " | ".join(tools) + " |")
    print("| --- |" + " ---: |" * len(tools))
    kinds = list(dict.fromkeys(kind(step) for times in tools["pipeline"].values() for step in times))
    for name in [*kinds, "total"]:
        cells = []
        for steps_by_photo in tools.values():
            sums = [
                sum(ms for step, ms in times.items() if name == "total" or kind(step) == name)
                for times in steps_by_photo.values()
            ]
            cells.append(f"{statistics.fmean(sums):.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


PARTS = {"study": quality_study, "steps": steps}


def print_steps(title: str, steps: dict[str, dict[str, float]], megapixels: dict) -> None:
    names = list(next(iter(steps.values())))
    photos = list(steps)
    totals = {photo: sum(times.values()) for photo, times in steps.items()}
    print(f"\n{title} (CPU ms, median; share of the photo's total):\n")
    print("| step | " + " | ".join(f"{p} ({megapixels[p]:.0f} MP)" for p in photos) + " | mean share |")
    print("| --- |" + " ---: |" * (len(photos) + 1))
    for name in [*names, "total"]:
        cells = []
        for photo in photos:
            value = totals[photo] if name == "total" else steps[photo][name]
            cells.append(f"{value:.1f} ({value / totals[photo]:.0%})")
        share = statistics.fmean((totals[p] if name == "total" else steps[p][name]) / totals[p] for p in photos)
        print(f"| {name} | " + " | ".join(cells) + f" | {share:.0%} |")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
