"""The backfill end to end on the local stack: 50 uploads rendered under settings A; the images service switched to
settings B (a size replaced, AVIF added); ``python -m images.backfill`` interrupted halfway and resumed re-renders
exactly those 50, once each, through the upload path, while new uploads keep flowing.

Settings B run in a second images service process started here, and the uploads subscription is pointed at it for
the test (and back after), as a new Cloud Run revision takes a service's traffic.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import image_samples as samples
import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1, storage
from google.cloud.firestore import FieldFilter
from google.pubsub_v1.types import PushConfig
from waiting import wait_for

from eventkit.catalog.images import IMAGE_PROCESSED
from images.image_records import IMAGE_SOURCES, IMAGES, record_id, source_id
from images.image_settings import ImageSettings
from images.upload_checks import SPEC_KEY
from stack.services import functions_framework_executable, service_command, service_env
from stack.topology import load_topology

SETTINGS_B = {"IMAGE_RENDITIONS": "large:1600,medium:800,small:400", "IMAGE_FORMATS": "jpeg,webp,avif"}
UPLOADS, RENDITIONS = "shop-uploads", "shop-renditions"
SUBSCRIPTION = "images-upload-events"
EARLIER, LATER = 50, 10


@pytest.fixture
def gcs(clean_stack: dict[str, Any]) -> storage.Client:
    return storage.Client(project=clean_stack["project"], credentials=AnonymousCredentials())


@pytest.fixture
def images_b(clean_stack: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A second images service under settings B; the test points the uploads subscription at it (and this puts
    the stack's own back after)."""
    topology = load_topology()
    service = topology.services["images"]
    port = _free_port()
    project, emulators = clean_stack["project"], clean_stack["emulators"]
    base_env = {**os.environ, **SETTINGS_B}
    env = service_env(service, topology, project=project, port=port, emulators=emulators, base_env=base_env)
    log = tmp_path / "images-b.log"
    argv = service_command(functions_framework_executable(), service, port)
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=service.source, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(lambda: _ready(f"http://127.0.0.1:{port}", process, log), seconds=30)
        yield {"env": env, "log": log, "cwd": service.source, "endpoint": f"http://127.0.0.1:{port}/"}
    finally:
        _push_to(clean_stack, clean_stack["services"]["images"] + "/")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _push_to(stack: dict[str, Any], endpoint: str) -> None:
    """Where the uploads subscription pushes: as a new revision taking a Cloud Run service's traffic."""
    pubsub_v1.SubscriberClient().modify_push_config(
        subscription=stack["subscriptions"][SUBSCRIPTION], push_config=PushConfig(push_endpoint=endpoint)
    )


def _ready(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"images (settings B) exited with {process.returncode}: {log.read_text()[-2000:]}")
    with contextlib.suppress(requests.RequestException):
        return requests.get(f"{url}/ready", timeout=1).status_code == 200
    return False


class BackfillRun:
    """``python -m images.backfill`` as an operator runs it beside the service: the service's environment."""

    def __init__(self, images: dict[str, Any], *args: str) -> None:
        argv = [sys.executable, "-m", "images.backfill", *args]
        self.process = subprocess.Popen(
            argv, cwd=images["cwd"], env=images["env"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        self.out: IO[str] = self.process.stdout
        self.lines: list[str] = []

    def read_until(self, predicate: Any) -> str:
        """Lines until one satisfies ``predicate`` (the run prints one per batch); fails if it ends first."""
        for line in self.out:
            self.lines.append(line.rstrip("\n"))
            if predicate(line):
                return line
        raise AssertionError("the backfill ended before the expected line:\n" + "\n".join(self.lines))

    def finish(self) -> int:
        self.lines += [line.rstrip("\n") for line in self.out]
        return self.process.wait(timeout=120)


def _published(line: str) -> int:
    return int(line.split("published ")[1].split(",")[0].split()[0])


def _upload(gcs: storage.Client, names: list[str]) -> list[storage.Blob]:
    blobs = []
    for index, name in enumerate(names):
        blob = gcs.bucket(UPLOADS).blob(name)
        blob.upload_from_string(samples.photo_jpeg(640, 480, seed=index))
        blobs.append(blob)
    return blobs


def _sources(db: Any, blobs: list[storage.Blob]) -> list[dict[str, Any] | None]:
    refs = [db.collection(IMAGE_SOURCES).document(source_id(UPLOADS, blob.name)) for blob in blobs]
    found = {snapshot.id: snapshot.to_dict() for snapshot in db.get_all(refs) if snapshot.exists}
    return [found.get(ref.id) for ref in refs]


def _all_under(db: Any, blobs: list[storage.Blob], spec: str) -> bool:
    return all(source is not None and source.get("spec") == spec for source in _sources(db, blobs))


def _processed_events(db: Any, blob: storage.Blob, spec: str) -> int:
    cause = f"images/{UPLOADS}/{blob.name}#{blob.generation}@{spec}"
    entries = db.collection("outbox").where(filter=FieldFilter("cause", "==", cause)).stream()
    return sum(1 for entry in entries if entry.get("event_type") == IMAGE_PROCESSED)


def _written(log: Path, blob: storage.Blob) -> int:
    key = f'"{UPLOADS}/{blob.name}#{blob.generation}"'
    return sum(1 for line in log.read_text().splitlines() if '"rendition written"' in line and key in line)


def test_the_backfill_rerenders_exactly_the_stale_uploads_once_each_interrupted_and_resumed(
    clean_stack: dict[str, Any], db: Any, gcs: storage.Client, images_b: dict[str, Any]
) -> None:
    spec_a = ImageSettings.from_env().spec  # the stack's images service: this environment's settings
    spec_b = ImageSettings.from_env({**os.environ, **SETTINGS_B}).spec
    prefix = f"backfill-{uuid.uuid4().hex[:8]}/"
    # Settings A: the stack's own images service renders the first 50; then B takes the subscription's pushes.
    earlier = _upload(gcs, [f"{prefix}{index:03}.jpg" for index in range(EARLIER)])
    wait_for(lambda: _all_under(db, earlier, spec_a), seconds=120)
    _push_to(clean_stack, images_b["endpoint"])
    assert [_processed_events(db, blob, spec_a) for blob in earlier] == [1] * EARLIER

    # Settings B: the backfill, interrupted once it has sent some; new uploads arrive meanwhile.
    first = BackfillRun(images_b, "--prefix", prefix, "--rate", "8")
    first.read_until(lambda line: "published" in line and _published(line) >= 16)
    later = _upload(gcs, [f"{prefix}new-{index:02}.jpg" for index in range(LATER)])
    first.process.send_signal(signal.SIGINT)
    assert first.finish() == 130, first.lines
    sent_first = _published(next(line for line in reversed(first.lines) if "published" in line))
    assert 16 <= sent_first < EARLIER, first.lines

    second = BackfillRun(images_b, "--prefix", prefix, "--rate", "8", "--wait", "--wait-timeout", "120")
    assert second.finish() == 0, second.lines
    assert any("going on after" in line for line in second.lines), second.lines
    done = next(line for line in second.lines if line.startswith("backfill: every object listed"))
    assert sent_first + _published(done) == EARLIER, (first.lines, second.lines)
    assert f"newer than the run {LATER}" in done  # the new uploads are left to their own notifications

    wait_for(lambda: _all_under(db, earlier + later, spec_b), seconds=120)
    # Once each: one ImageProcessed per version and settings, and each rendition written once under B.
    assert [_processed_events(db, blob, spec_b) for blob in earlier + later] == [1] * (EARLIER + LATER)
    assert [_processed_events(db, blob, spec_a) for blob in later] == [0] * LATER
    per_source = 3 * 3  # three sizes, three formats
    assert [_written(images_b["log"], blob) for blob in earlier + later] == [per_source] * (EARLIER + LATER)
    # Never mixed: exactly B's renditions are left, each marked with B's fingerprint; A's thumb is gone.
    expected = sorted(f"{label}.{ext}" for label in ("large", "medium", "small") for ext in ("jpg", "webp", "avif"))
    for blob in earlier + later:
        renditions = list(gcs.list_blobs(RENDITIONS, prefix=f"{blob.name}/"))
        assert sorted(r.name.removeprefix(f"{blob.name}/") for r in renditions) == expected, blob.name
        assert {r.metadata[SPEC_KEY] for r in renditions} == {spec_b}
        record = db.collection(IMAGES).document(record_id(UPLOADS, blob.name, blob.generation)).get().to_dict()
        assert record["spec"] == spec_b and len(record["renditions"]) == per_source
