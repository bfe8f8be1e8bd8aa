"""deadletters: records every message Pub/Sub dead-letters, so an operator can list, replay or discard it.

Push subscriptions from every dead-letter topic (topology.yaml: ``deadletters-<dead-letter topic>``) deliver
here. Flow: read the push body (deadletters/dead_letter.py) → look up the source subscription's topic → write
one record per message, idempotently (deadletters/dead_letter_store.py) → 200. A body that is not a push
delivery is itself recorded as a permanent failure and acknowledged; if Firestore cannot be written, the answer
is 503 and Pub/Sub redelivers. Operators use ``python -m dlq`` (docs/dead-letters.md).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from deadletters.dead_letter import read_dead_letter
from deadletters.dead_letter_store import record, source_topic
from eventkit import Service
from eventkit.errors import PermanentError

SERVICE = "deadletters"
JSON = {"Content-Type": "application/json"}

log = logging.getLogger(SERVICE)
service = Service(SERVICE)  # a missing variable stops the process at start-up, naming it


def handle_event(request: Any) -> tuple[str, int, dict[str, str]]:
    """functions-framework target (signature type http)."""
    return service.serve(request, record_dead_letter, consumer=SERVICE)


def record_dead_letter(request: Any) -> tuple[str, int, dict[str, str]]:
    headers, body = dict(request.headers), b""
    try:
        body = service.read_body(request)
        dead_letter = read_dead_letter(body, service.config.project)
    except PermanentError as error:  # not a push delivery: recorded as a permanent failure, acknowledged
        return service.answer(service.reject_unread(error, body, headers))
    try:
        outcome = record(service.db, dead_letter, source_topic(dead_letter.source_subscription))
    except Exception as exc:  # Firestore unavailable: Pub/Sub redelivers, nothing is lost
        log.warning("could not record the dead letter; asking for redelivery", extra={"fields": {"error": str(exc)}})
        return _answer({"status": "retry", "reason": "not_recorded"}, 503)
    log.warning(
        f"dead letter {outcome}",
        extra={
            "fields": {
                "record_id": dead_letter.record_id,
                "subscription": dead_letter.source_subscription,
                "delivery_count": dead_letter.delivery_count,
                "event_id": dead_letter.event_id,
                "message_id": dead_letter.message.message_id,
            }
        },
    )
    return _answer({"status": outcome, "record_id": dead_letter.record_id}, 200)


def _answer(body: dict[str, Any], status: int) -> tuple[str, int, dict[str, str]]:
    return json.dumps(body), status, dict(JSON)
