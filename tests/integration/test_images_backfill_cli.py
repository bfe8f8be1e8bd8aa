"""``python -m images.backfill`` refusing what would lose messages or cannot work, with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from google.cloud import pubsub_v1

IMAGES_SOURCE = Path(__file__).resolve().parents[2] / "services" / "images"


def _backfill(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "images.backfill", *args],
        cwd=IMAGES_SOURCE,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _stack_env(stack: dict[str, Any]) -> dict[str, str]:
    return {
        "GOOGLE_CLOUD_PROJECT": stack["project"],
        "PUBSUB_EMULATOR_HOST": stack["emulators"]["pubsub"],
        "FIRESTORE_EMULATOR_HOST": stack["emulators"]["firestore"],
        "STORAGE_EMULATOR_HOST": stack["emulators"]["storage"],
        "BUCKET_UPLOADS": stack["buckets"]["uploads"],
    }


def test_a_topic_nothing_subscribes_to_is_refused_and_nothing_is_sent(stack: dict[str, Any]) -> None:
    topic = f"unread-{uuid.uuid4().hex[:8]}"
    publisher = pubsub_v1.PublisherClient()
    publisher.create_topic(name=publisher.topic_path(stack["project"], topic))

    result = _backfill({**_stack_env(stack), "TOPIC_UPLOAD_EVENTS": topic}, "--restart")

    assert result.returncode == 1, result
    assert f"nothing subscribes to projects/{stack['project']}/topics/{topic}" in result.stderr
    assert "published" not in result.stdout


def test_a_missing_topic_or_setting_is_one_line_naming_it(stack: dict[str, Any]) -> None:
    missing_topic = _backfill({**_stack_env(stack), "TOPIC_UPLOAD_EVENTS": "no-such-topic"})
    no_bucket = _backfill({**_stack_env(stack), "BUCKET_UPLOADS": ""})
    bad_formats = _backfill({**_stack_env(stack), "IMAGE_FORMATS": "jpeg,gif"}, "--dry-run")
    bad_rate = _backfill(_stack_env(stack), "--rate", "0")

    assert missing_topic.returncode == 1 and "no-such-topic does not exist" in missing_topic.stderr
    assert no_bucket.returncode == 1 and "BUCKET_UPLOADS is not set" in no_bucket.stderr
    assert bad_formats.returncode == 1 and "IMAGE_FORMATS: 'gif' is not one of" in bad_formats.stderr
    assert bad_rate.returncode == 2 and "'0' must be more than 0" in bad_rate.stderr
    for result in (missing_topic, no_bucket, bad_formats):
        assert "Traceback" not in result.stderr, result.stderr
