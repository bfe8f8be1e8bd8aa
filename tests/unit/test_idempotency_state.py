"""The ledger's record state machine, without Firestore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventkit.errors import IdempotencyKeyConflictError
from eventkit.idempotency import IdempotencyRecord, Status, decide, ledger_document_id, payload_hash

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _record(status: Status, lease_seconds: int | None = None, digest: str = "h") -> IdempotencyRecord:
    lease = NOW + timedelta(seconds=lease_seconds) if lease_seconds is not None else None
    return IdempotencyRecord("c", "k", status, digest, NOW + timedelta(days=7), lease_expires_at=lease)


def test_no_record_means_run() -> None:
    assert decide(None, "h", NOW) == "run"


def test_completed_record_means_duplicate() -> None:
    assert decide(_record(Status.COMPLETED), "h", NOW) == "duplicate"


def test_live_lease_means_held_and_expired_lease_means_run() -> None:
    assert decide(_record(Status.IN_PROGRESS, lease_seconds=30), "h", NOW) == "held"
    assert decide(_record(Status.IN_PROGRESS, lease_seconds=-1), "h", NOW) == "run"


def test_key_reused_for_another_payload_is_a_conflict() -> None:
    with pytest.raises(IdempotencyKeyConflictError, match="different payload"):
        decide(_record(Status.COMPLETED, digest="other"), "h", NOW)


def test_payload_hash_ignores_key_order_but_not_values() -> None:
    assert payload_hash({"a": 1, "b": 2}) == payload_hash({"b": 2, "a": 1})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})


def test_document_ids_escape_slashes_and_stay_short() -> None:
    assert ledger_document_id("inventory", "a/b") == "inventory:a%2Fb"
    long_id = ledger_document_id("inventory", "x" * 5000)
    assert long_id.startswith("inventory:sha256-") and len(long_id) < 200


def test_record_round_trips_through_its_document() -> None:
    record = _record(Status.IN_PROGRESS, lease_seconds=10)
    assert IdempotencyRecord.from_document(record.to_document()) == record
