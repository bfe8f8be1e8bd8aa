"""The ledger's record state machine, without Firestore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventkit.errors import IdempotencyKeyConflictError, LeaseHeldError
from eventkit.idempotency import (
    Decision,
    IdempotencyRecord,
    RecordState,
    decide,
    ledger_document_id,
    payload_hash,
    proceed,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _record(state: RecordState, lease_seconds: int | None = None, digest: str = "h") -> IdempotencyRecord:
    lease = NOW + timedelta(seconds=lease_seconds) if lease_seconds is not None else None
    return IdempotencyRecord("c", "k", state, digest, NOW + timedelta(days=7), lease_expires_at=lease)


def test_no_record_means_run() -> None:
    assert decide(None, "h", NOW) is Decision.RUN


def test_completed_record_means_duplicate() -> None:
    assert decide(_record(RecordState.COMPLETED), "h", NOW) is Decision.DUPLICATE


def test_live_lease_means_held_and_expired_lease_means_run() -> None:
    assert decide(_record(RecordState.IN_PROGRESS, lease_seconds=30), "h", NOW) is Decision.HELD
    assert decide(_record(RecordState.IN_PROGRESS, lease_seconds=-1), "h", NOW) is Decision.RUN


def test_key_reused_for_another_payload_is_a_conflict() -> None:
    assert decide(_record(RecordState.COMPLETED, digest="other"), "h", NOW) is Decision.CONFLICT
    with pytest.raises(IdempotencyKeyConflictError, match="different payload"):
        proceed(Decision.CONFLICT, "c", "k")


def test_proceed_runs_skips_or_raises_by_decision() -> None:
    assert proceed(Decision.RUN, "c", "k") is True
    assert proceed(Decision.DUPLICATE, "c", "k") is False
    with pytest.raises(LeaseHeldError, match="lease held"):
        proceed(Decision.HELD, "c", "k")


def test_payload_hash_ignores_key_order_but_not_values() -> None:
    assert payload_hash({"a": 1, "b": 2}) == payload_hash({"b": 2, "a": 1})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})


def test_document_ids_escape_slashes_and_stay_short() -> None:
    assert ledger_document_id("inventory", "a/b") == "inventory:a%2Fb"
    long_id = ledger_document_id("inventory", "x" * 5000)
    assert long_id.startswith("inventory:sha256-") and len(long_id) < 200


def test_record_round_trips_through_its_document() -> None:
    record = _record(RecordState.IN_PROGRESS, lease_seconds=10)
    assert IdempotencyRecord.from_document(record.to_document()) == record
