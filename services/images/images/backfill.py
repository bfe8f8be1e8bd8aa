"""``python -m images.backfill``: re-render the uploads whose renditions were made under other settings.

It lists the uploads bucket, reads each object's ``image_sources`` document, and for every version that is *stale*
(recorded under another settings fingerprint) or *missing* (never recorded), publishes the OBJECT_FINALIZE
notification Cloud Storage would have sent to the uploads topic. The images service then renders it through the
same path as an upload, once per version and fingerprint: a message sent twice (a resumed run, an upload's own
notification) is a duplicate there, never a second effect.

Configured by the images service's environment (``GOOGLE_CLOUD_PROJECT``, ``BUCKET_UPLOADS``, the ``IMAGE_*``
settings; ``TOPIC_UPLOAD_EVENTS`` if the uploads topic is not the topology's ``upload-events``), so run it where
the service's settings are: locally
``make backfill ARGS="--dry-run"`` (the local stack's images service environment), in Google Cloud the
``images-backfill`` Cloud Run job Terraform defines from the service's image and settings (docs/images.md).

- ``--dry-run`` lists what would be re-rendered, and publishes nothing.
- ``--rate R`` publishes at most R notifications a second (default 20): the service scales with what it is sent.
- ``--prefix P`` only looks at objects whose names start with P.
- Resumable: after each second's batch the position (the last object name sent) is saved in Firestore under
  ``image_backfills/<bucket, prefix, fingerprint>``; a run interrupted (Ctrl-C, SIGTERM, a crash) and started
  again goes on after it. Objects created after the first run began are left to their own notifications.
- ``--wait`` then waits until every version sent is recorded under this fingerprint, and says so if the service
  renders under another one (its settings differ from this process's).

Exit status: 0 done, 1 an error (said in one line), 130 interrupted (the position is saved; run it again).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from eventkit import Service
from eventkit.errors import ConfigError
from images.image_records import IMAGE_SOURCES, source_id, staleness
from images.image_settings import ImageSettings
from images.upload_checks import BACKFILL_SPEC_ATTRIBUTE, MARKER_KEY

UPLOAD_EVENTS = "upload-events"
TOPIC_VARIABLE = "TOPIC_UPLOAD_EVENTS"
BACKFILLS = "image_backfills"
LIST_PAGE = 500
WAIT_POLL_SECONDS = 2.0
PUBLISH_TIMEOUT_SECONDS = 60.0


class BackfillError(Exception):
    """What stops a run, said in one line."""


@dataclass
class Tally:
    listed: int = 0
    current: int = 0
    stale: int = 0
    missing: int = 0
    published: int = 0
    left_to_uploads: int = 0  # created after the run began: their own notifications render them
    sent: list[tuple[str, int]] = field(default_factory=list)  # (name, generation) published by this run

    def line(self, rate: float | None = None) -> str:
        parts = [
            f"listed {self.listed}",
            f"current {self.current}",
            f"stale {self.stale}",
            f"missing {self.missing}",
            f"published {self.published}",
        ]
        if self.left_to_uploads:
            parts.append(f"newer than the run {self.left_to_uploads}")
        if rate is not None:
            parts.append(f"{rate:.1f}/s")
        return "backfill: " + ", ".join(parts)


@dataclass(frozen=True)
class Candidate:
    name: str
    generation: int
    reason: str  # "stale" or "missing"
    blob: Any


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = ImageSettings.from_env()
        service = Service("images-backfill", buckets=["uploads"])
    except ConfigError as exc:
        print(f"backfill: error: {exc}", file=sys.stderr)
        return 1
    run = Backfill(service, settings, prefix=args.prefix, rate=args.rate, limit=args.limit)
    print(
        f"backfill: gs://{run.bucket}/{run.prefix} → {run.topic_path}, under spec {settings.spec} "
        f"(sizes {', '.join(f'{s.label}:{s.longest_edge}' for s in settings.specs)}; "
        f"formats {', '.join(f.lower() for f in settings.encoding.formats)})",
        flush=True,
    )
    try:
        if args.dry_run:
            return run.dry_run()
        with _stop_requests() as stop:
            interrupted = run.publish(restart=args.restart, stop=stop)
        if interrupted:
            print(f"backfill: interrupted; the position is saved: run it again to go on. {run.tally.line()}")
            return 130
        return run.wait(args.wait_timeout) if args.wait else 0
    except BackfillError as exc:
        print(f"backfill: error: {exc}", file=sys.stderr)
        return 1


class Backfill:
    def __init__(
        self, service: Service, settings: ImageSettings, *, prefix: str, rate: float, limit: int | None
    ) -> None:
        self.service, self.settings, self.prefix = service, settings, prefix
        self.spec = settings.spec
        self.bucket = service.config.bucket("uploads")
        topic = os.environ.get(TOPIC_VARIABLE) or UPLOAD_EVENTS  # the service reads it: not in its environment
        self.topic_path = f"projects/{service.config.project}/topics/{topic}"
        self.rate, self.limit = rate, limit
        self.tally = Tally()
        self.began = datetime.now(UTC)  # a record written since, under another spec: the service's settings differ

    # --- what is stale ----------------------------------------------------------------------------------------

    def candidates(self, *, after: str = "", created_before: datetime | None = None) -> Iterator[Candidate]:
        """The uploads bucket's objects past ``after`` (by name) that need rendering, in name order."""
        blobs = self.service.storage.list_blobs(
            self.bucket, prefix=self.prefix or None, start_offset=after or None, page_size=LIST_PAGE
        )
        for page in blobs.pages:
            listed = [blob for blob in page if blob.name > after and MARKER_KEY not in (blob.metadata or {})]
            sources = self._sources(blob.name for blob in listed)
            for blob in listed:
                self.tally.listed += 1
                if created_before is not None and blob.time_created and blob.time_created > created_before:
                    self.tally.left_to_uploads += 1
                    continue
                reason = staleness(int(blob.generation), sources.get(blob.name), self.spec)
                if reason is None:
                    self.tally.current += 1
                    continue
                setattr(self.tally, reason, getattr(self.tally, reason) + 1)
                yield Candidate(blob.name, int(blob.generation), reason, blob)

    def _sources(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        refs = [self.service.db.collection(IMAGE_SOURCES).document(source_id(self.bucket, n)) for n in names]
        found = {}
        for snapshot in self.service.db.get_all(refs) if refs else ():
            if snapshot.exists:
                document = snapshot.to_dict() or {}
                found[document.get("name", "")] = document
        return found

    # --- the three modes --------------------------------------------------------------------------------------

    def dry_run(self) -> int:
        for candidate in self.candidates():
            print(f"{candidate.reason}\t{candidate.name}#{candidate.generation}", flush=True)
        print(self.tally.line() + " (dry run: nothing published)")
        return 0

    def publish(self, *, restart: bool, stop: list[bool]) -> bool:
        """Publish every candidate, paced and checkpointed; True if a stop request ended it early."""
        position = _Position(self.service.db, self.bucket, self.prefix, self.spec, restart=restart)
        if position.after:
            print(f"backfill: going on after {position.after!r} (started {position.started_at:%Y-%m-%d %H:%M:%S}Z)")
        publisher = _publisher()
        self._check_topic_is_read(publisher)
        started, batch, batch_began = time.monotonic(), [], time.monotonic()
        candidates = self.candidates(after=position.after, created_before=position.started_at)
        for candidate in candidates:
            if stop[0] or (self.limit is not None and self.tally.published + len(batch) >= self.limit):
                break
            data, attributes = _notification(candidate.blob, self.spec)
            batch.append((candidate, publisher.publish(self.topic_path, data, **attributes)))
            if len(batch) >= max(1, int(self.rate)):
                self._settle(batch, position, started)
                _pace(batch_began, len(batch), self.rate)
                batch, batch_began = [], time.monotonic()
        self._settle(batch, position, started)
        interrupted = stop[0]
        if not interrupted and (self.limit is None or self.tally.published < self.limit):
            position.finish()
            print("backfill: every object listed; " + self.tally.line().removeprefix("backfill: "), flush=True)
        return interrupted

    def _check_topic_is_read(self, publisher: Any) -> None:
        """Refuse to send into a topic nothing subscribes to (its messages would be dropped): with an Eventarc
        storage trigger, for one, uploads never pass through it."""
        from google.api_core import exceptions

        try:
            publisher.get_topic(request={"topic": self.topic_path})
            subscriptions = list(publisher.list_topic_subscriptions(request={"topic": self.topic_path}))
        except exceptions.NotFound:
            missing = f"{self.topic_path} does not exist (set TOPIC_UPLOAD_EVENTS to the uploads topic)"
            raise BackfillError(missing) from None
        except exceptions.GoogleAPICallError as exc:
            raise BackfillError(f"cannot list the subscriptions of {self.topic_path}: {exc}") from exc
        if not subscriptions:
            raise BackfillError(
                f"nothing subscribes to {self.topic_path}: what is sent there would be lost "
                "(with an Eventarc storage trigger there is no backfill; docs/images.md)"
            )

    def _settle(self, batch: list[tuple[Candidate, Any]], position: _Position, started: float) -> None:
        """Wait until the batch is accepted by Pub/Sub, then move the saved position past it."""
        if not batch:
            return
        for candidate, future in batch:
            try:
                future.result(timeout=PUBLISH_TIMEOUT_SECONDS)
            except Exception as exc:  # the position stays before this one: a new run sends it again
                raise BackfillError(f"publishing {candidate.name} to {self.topic_path} failed: {exc}") from exc
            self.tally.published += 1
            self.tally.sent.append((candidate.name, candidate.generation))
        position.advance(batch[-1][0].name, len(batch))
        print(self.tally.line(self.tally.published / max(time.monotonic() - started, 1e-9)), flush=True)

    def wait(self, timeout: float) -> int:
        """Until every version this run sent is recorded under this spec; 1 with the reason if not in time."""
        pending = dict(self.tally.sent)
        deadline, total = time.monotonic() + timeout, len(pending)
        while pending:
            sources = self._sources(pending)
            for name, generation in list(pending.items()):
                source = sources.get(name)
                if staleness(generation, source, self.spec) is None:
                    del pending[name]
                elif source and source.get("updated_at", self.began) > self.began and source.get("spec"):
                    raise BackfillError(
                        f"{name} was rendered under spec {source['spec']}, not {self.spec}: the images service "
                        "runs other settings than this process; run the backfill with the service's IMAGE_* settings"
                    )
            print(f"backfill: rendered {total - len(pending)} of {total}", flush=True)
            if not pending:
                break
            if time.monotonic() > deadline:
                name = next(iter(pending))
                found = (sources.get(name) or {}).get("spec")
                raise BackfillError(
                    f"{len(pending)} not rendered under spec {self.spec} after {timeout:.0f} s, e.g. {name} "
                    f"(recorded under {found or 'none'}); if the images service runs other IMAGE_* settings than "
                    "this process, it renders under its own spec: run the backfill with the service's settings"
                )
            time.sleep(WAIT_POLL_SECONDS)
        return 0


class _Position:
    """Where a run is, in Firestore: written once a second at most (one document, well under its write limit)."""

    def __init__(self, db: Any, bucket: str, prefix: str, spec: str, *, restart: bool) -> None:
        key = hashlib.sha256(f"{bucket}\0{prefix}\0{spec}".encode()).hexdigest()[:40]
        self.ref = db.collection(BACKFILLS).document(key)
        saved = None if restart else self.ref.get().to_dict()
        if saved and not saved.get("finished_at"):
            self.after, self.started_at = str(saved.get("after", "")), saved["started_at"]
        else:
            self.after, self.started_at = "", datetime.now(UTC)
            self.ref.set({"bucket": bucket, "prefix": prefix, "spec": spec, "started_at": self.started_at, "after": ""})

    def advance(self, name: str, published: int) -> None:
        from google.cloud.firestore import Increment

        self.after = name
        self.ref.update({"after": name, "published": Increment(published), "updated_at": datetime.now(UTC)})

    def finish(self) -> None:
        self.ref.update({"finished_at": datetime.now(UTC)})


def _notification(blob: Any, spec: str) -> tuple[bytes, dict[str, str]]:
    """The OBJECT_FINALIZE notification (payloadFormat JSON_API_V1) Cloud Storage sends for this version."""
    resource = {
        "kind": "storage#object",
        "bucket": blob.bucket.name,
        "name": blob.name,
        "generation": str(blob.generation),
        "metageneration": str(blob.metageneration) if blob.metageneration is not None else None,
        "size": str(blob.size) if blob.size is not None else None,
        "contentType": blob.content_type,
        "metadata": blob.metadata,
        "timeCreated": blob.time_created.isoformat() if blob.time_created else None,
        "md5Hash": blob.md5_hash,
        "crc32c": blob.crc32c,
    }
    attributes = {
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
        "bucketId": blob.bucket.name,
        "objectId": blob.name,
        "objectGeneration": str(blob.generation),
        BACKFILL_SPEC_ATTRIBUTE: spec,  # the service warns when it is not its own
    }
    data = {key: value for key, value in resource.items() if value is not None}
    return json.dumps(data).encode(), attributes


def _publisher() -> Any:
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient()


def _pace(began: float, sent: int, rate: float) -> None:
    """Sleep what is left of the time ``sent`` messages may take at ``rate`` a second."""
    remaining = sent / rate - (time.monotonic() - began)
    if remaining > 0:
        time.sleep(remaining)


@contextlib.contextmanager
def _stop_requests() -> Iterator[list[bool]]:
    """SIGINT/SIGTERM set a flag the loop reads between messages: the batch under way is settled and saved."""
    flag = [False]

    def request(signum: int, frame: FrameType | None) -> None:
        flag[0] = True

    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m images.backfill",
        description="Re-render uploads recorded under other rendition settings (docs/images.md).",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be re-rendered; publish nothing")
    parser.add_argument("--prefix", default="", help="only objects whose names start with this")
    parser.add_argument("--rate", type=_positive, default=20.0, help="notifications a second (default %(default)s)")
    parser.add_argument("--limit", type=int, help="stop after publishing this many")
    parser.add_argument("--restart", action="store_true", help="start from the first object, not the saved position")
    parser.add_argument("--wait", action="store_true", help="then wait until every version sent is rendered")
    parser.add_argument("--wait-timeout", type=_positive, default=900.0, help="seconds (default %(default)s)")
    return parser


def _positive(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be more than 0")
    return value


if __name__ == "__main__":
    sys.exit(main())
