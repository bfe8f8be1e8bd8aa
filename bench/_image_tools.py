"""The tools bench/images.py compares, each making one photo's renditions: how each is run and timed.

In-process tools (the service's pipeline, pyvips) run as long-lived worker processes, one per tool, that convert
each photo they are sent on stdin and answer with one JSON line of timings: the bench sends the photos to every
tool in turn (interleaved, so a burst of load on the shared machine falls on every tool alike) while each tool
keeps its own process and peak RSS. CLIs (vipsthumbnail, ImageMagick) are spawned per photo.

Not a benchmark by itself (the leading underscore); figures only, never a test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

EDGES = {"large": 1600, "medium": 800, "thumb": 200}
JPEG_QUALITY = 85
EXTENSIONS = {"JPEG": "jpg", "WEBP": "webp", "AVIF": "avif"}


@dataclass(frozen=True)
class Tool:
    """One row of the comparison. ``kind``: pipeline, pyvips or a CLI; ``formats``: what each size is saved as."""

    name: str
    kind: str
    formats: tuple[str, ...] = ("JPEG",)
    threads: int | None = None  # pipeline: None is the service's default (every CPU up to 4)
    cascade: bool = False  # pyvips: each smaller size from the previous one in memory, not from the file
    qualities: dict[str, int] = field(default_factory=lambda: {"JPEG": JPEG_QUALITY})
    avif_speed: int = 8  # the pipeline's AVIF_SPEED, for pyvips (not imported there: it would load Pillow too)

    @property
    def in_process(self) -> bool:
        return self.kind in ("pipeline", "pyvips")

    def folder(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.name)


# --- the in-process tools ---------------------------------------------------------------------------------------


def converter(tool: Tool, out_dir: Path) -> Callable[[Path], None]:
    """A function that makes every rendition of one photo with ``tool`` and writes them to ``out_dir``."""
    if tool.kind == "pipeline":
        from images.imaging import convert
        from images.renditions import Encoding, RenditionSpec

        specs = tuple(RenditionSpec(label, edge) for label, edge in EDGES.items())
        encoding = Encoding(
            formats=tool.formats,
            jpeg_quality=tool.qualities["JPEG"],
            webp_quality=tool.qualities.get("WEBP", Encoding.webp_quality),
            avif_quality=tool.qualities.get("AVIF", Encoding.avif_quality),
        )

        def run(path: Path) -> None:
            with path.open("rb") as fp:
                converted = convert(fp, specs, encoding=encoding, threads=tool.threads)
            for rendition in converted.renditions:
                name = f"{path.stem}-{rendition.label}.{EXTENSIONS[rendition.format]}"
                (out_dir / name).write_bytes(rendition.data)

        return run
    if tool.kind == "pyvips":
        import pyvips

        # libvips' heifsave "effort" is libaom's speed counted the other way (effort 0 is speed 9, 1 is 8: the same
        # CPU time and bytes as Pillow's speed 9 and 8 on the benchmark photos).
        avif_effort = 9 - tool.avif_speed

        def save(image: pyvips.Image, target: Path, fmt: str) -> None:
            quality = tool.qualities[fmt]
            if fmt == "JPEG":
                image.jpegsave(
                    str(target), Q=quality, optimize_coding=True, interlace=True, strip=True, subsample_mode="on"
                )
            elif fmt == "WEBP":
                image.webpsave(str(target), Q=quality, effort=4, strip=True)
            else:
                image.heifsave(str(target), Q=quality, compression="av1", effort=avif_effort, strip=True)

        def run(path: Path) -> None:
            previous = None
            for label, edge in EDGES.items():
                if tool.cascade and previous is not None:
                    image = previous.thumbnail_image(edge, height=edge, size="down")
                else:
                    image = pyvips.Image.thumbnail(str(path), edge, height=edge, size="down")
                if len(tool.formats) > 1 or tool.cascade:
                    # vips is lazy: without a copy in memory every save (and every smaller size) would decode and
                    # resize again.
                    image = image.copy_memory()
                for fmt in tool.formats:
                    save(image, out_dir / f"{path.stem}-{label}.{EXTENSIONS[fmt]}", fmt)
                previous = image

        return run
    raise SystemExit(f"not an in-process tool: {tool.kind}")


def serve_worker(tool: Tool, out_dir: Path) -> None:
    """The worker's loop: a photo path per stdin line → one JSON line of wall and CPU ms (or the error); at the
    end of stdin, the process's peak RSS and its RSS before the first photo."""
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    run = converter(tool, out_dir)
    baseline_rss = rss_kb("VmRSS")  # interpreter + imports; the warm-up and the photos count above it
    warm_up = out_dir / "warm-up.jpg"
    Image.new("RGB", (1800, 1200), (90, 120, 150)).save(warm_up, quality=90)
    run(warm_up)  # first-call costs (plugin registration, libjpeg init) are not per-image costs
    for line in sys.stdin:
        path = Path(line.strip())
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            run(path)
        except Exception as exc:  # a tool refusing a file is a result, not a crash
            answer = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
        else:
            answer = {
                "ms": (time.perf_counter() - started) * 1000,
                "cpu_ms": (time.process_time() - cpu_started) * 1000,  # every thread of the process
            }
        print(json.dumps(answer), flush=True)
    print(json.dumps({"peak_rss_kb": rss_kb("VmHWM"), "baseline_rss_kb": baseline_rss}), flush=True)


def rss_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


class Worker:
    """A running worker process of bench/images.py for one in-process tool."""

    def __init__(self, script: Path, tool: Tool, out_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(script), "_worker", json.dumps(asdict(tool)), str(out_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def convert(self, path: Path) -> dict:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"a worker exited with {self.process.wait()}")
        return json.loads(line)

    def finish(self) -> dict:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.close()
        last = json.loads(self.process.stdout.readline())
        self.process.wait()
        return last


def tool_from_json(text: str) -> Tool:
    values = json.loads(text)
    return Tool(**{**values, "formats": tuple(values["formats"])})


# --- the CLIs: one process per photo (wall time, the child's CPU time and peak RSS) ------------------------------


def run_cli(commands: list[list[str]]) -> tuple[float, float, int, str | None]:
    """Wall and CPU ms of the commands (run in sequence), the children's peak RSS in KB, and any error.

    posix_spawn, not fork: a forked child would first count this process's pages in its own peak RSS.
    """
    started, cpu, peak, error = time.perf_counter(), 0.0, 0, None
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
    return (time.perf_counter() - started) * 1000, cpu * 1000, peak, error


def cli_commands(tool: Tool, path: Path, out_dir: Path) -> list[list[str]]:
    if tool.kind == "vipsthumbnail":
        return vipsthumbnail_commands(path, out_dir)
    if tool.kind == "magick":
        return magick_commands(path, out_dir, size_hint=False)
    if tool.kind == "magick jpeg:size":
        return magick_commands(path, out_dir, size_hint=True)
    raise SystemExit(f"unknown CLI tool {tool.kind}")


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
        str(JPEG_QUALITY),
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
    options = f"[Q={JPEG_QUALITY},strip,interlace,subsample-mode=on]"
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
