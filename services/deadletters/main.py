"""deadletters: records every message Pub/Sub dead-letters, so an operator can list, replay or discard it.

Push subscriptions from every dead-letter topic (topology.yaml: ``deadletters-<dead-letter topic>``) deliver
here. Flow: read the push body (deadletters/dead_letter.py) → look up the source subscription's topic → write
one record per message, idempotently (deadletters/dead_letter_store.py) → 200. A body that is not a push
delivery is itself recorded as a permanent failure and acknowledged; if Firestore cannot be written, the answer
is 503 and Pub/Sub redelivers. Operators use ``python -m dlq`` (docs/dead-letters.md).
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from deadletters.dead_letter import read_dead_letter
from deadletters.dead_letter_store import record, source_topic
from eventkit.clients import firestore_client
from eventkit.config import Config
from eventkit.errors import PayloadTooLargeError, PermanentError
from eventkit.failures import FailedDelivery, FailureRecorder
from eventkit.readiness import readiness_answer
from eventkit.structured_log import log_context, setup_logging
from eventkit.trace import trace_from_headers

SERVICE = "deadletters"
JSON = {"Content-Type": "application/json"}

log = logging.getLogger(SERVICE)


@functools.cache
def config() -> Config:
    settings = Config.from_env(service=SERVICE)
    setup_logging(settings.service, settings.project)
    return settings


config()  # a missing variable stops the process at start-up, naming it


def handle_event(request: Any) -> tuple[str, int, dict[str, str]]:
    """functions-framework target (signature type http)."""
    if probe := readiness_answer(request, SERVICE):
        return probe
    headers = dict(request.headers)
    with log_context(trace=trace_from_headers(headers), consumer=SERVICE):
        limit = config().max_delivery_bytes
        if request.content_length is not None and request.content_length > limit:
            too_large = PayloadTooLargeError(f"request body is {request.content_length} bytes; the limit is {limit}")
            return _rejected(too_large, b"", headers)
        body = request.get_data(cache=False)
        try:
            dead_letter = read_dead_letter(body, config().project)
        except PermanentError as error:
            return _rejected(error, body, headers)
        db = firestore_client(config().project)
        try:
            outcome = record(db, dead_letter, source_topic(dead_letter.source_subscription))
        except Exception as exc:  # Firestore unavailable: Pub/Sub redelivers, nothing is lost
            log.warning(
                "could not record the dead letter; asking for redelivery", extra={"fields": {"error": str(exc)}}
            )
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


def _rejected(error: PermanentError, body: bytes, headers: dict[str, str]) -> tuple[str, int, dict[str, str]]:
    failure = FailedDelivery.unparsed(SERVICE, error.reason, str(error), body, headers)
    try:
        record_id = FailureRecorder(firestore_client(config().project)).record(failure)
    except Exception as exc:
        log.error("could not record a permanent failure", exc_info=exc)
        return _answer({"status": "retry", "reason": "failure_not_recorded"}, 503)
    log.error(f"rejected: {error}", extra={"fields": {"reason": error.reason, "failure_id": record_id}})
    return _answer({"status": "rejected", "reason": error.reason, "message": str(error), "failure_id": record_id}, 200)


def _answer(body: dict[str, Any], status: int) -> tuple[str, int, dict[str, str]]:
    return json.dumps(body), status, dict(JSON)
