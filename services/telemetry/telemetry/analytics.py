"""The analytics service (``telemetry-analytics``): exact windows, once, and edge-triggered alerts.

For each ``TelemetryReadings`` event, in ONE Firestore transaction with the event's ledger entry: skip readings
already counted (per-reading ledger entries), fold the new ones into their windows, move the device's latest
values and alert states, and for every threshold crossing record the alert and stage a ``TelemetryAlert`` in the
outbox.
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import UTC, datetime
from typing import Any

from eventkit import Consumer, DomainEvent, HandlerContext, PermanentError
from eventkit.catalog.telemetry import TELEMETRY_ALERT, TELEMETRY_READINGS, TelemetryReadings
from telemetry import store
from telemetry.alerts import advance, effective, parse_thresholds
from telemetry.readings import reading_key
from telemetry.settings import load_settings
from telemetry.validation import age_problem
from telemetry.windows import aggregate, merged

ANALYTICS = "telemetry-analytics"
ALERTS_TOPIC = "telemetry-alerts"

log = logging.getLogger("telemetry")


@functools.cache
def consumer() -> Consumer:
    """The analytics consumer, built on first use (its configuration is checked then)."""
    readings_consumer = Consumer(ANALYTICS, topics=[ALERTS_TOPIC])
    # Exactly once, inside the ledger transaction; one device's batches queue here rather than collide on its
    # device and window documents (the subscription does not order them). No delivery note: nobody follows a
    # batch of readings hop by hop, and it is the hottest path (one write less per batch).
    readings_consumer.on(TELEMETRY_READINGS, serialize_on=device_documents, noted=False)(record_readings)
    return readings_consumer


def device_documents(event: DomainEvent) -> list[str]:
    """The device's document path: its lock name, and read with the delivery's ledger entry."""
    return [f"{store.DEVICES}/{event.data.device_id}"]  # type: ignore[attr-defined]


def record_readings(event: DomainEvent, ctx: HandlerContext) -> None:
    batch: TelemetryReadings = event.data  # type: ignore[assignment]
    device_id, now = batch.device_id, datetime.now(UTC)
    unique = {reading.reading_id: reading for reading in batch.readings}
    stale = {rid: r for rid, r in unique.items() if r.ts < now - load_settings().limits.retention}
    fresh = {rid: r for rid, r in unique.items() if rid not in stale}
    if not fresh:
        raise PermanentError(
            f"all {len(stale)} readings of device {device_id} "
            f"{age_problem(min(r.ts for r in stale.values()), now, load_settings().limits)}",
            reason="reading_too_old",
        )
    db, tx = ctx.db, ctx.transaction
    thresholds = _thresholds(db, device_id)  # read outside the transaction's locks: operators edit them

    # Reads first (Firestore transactions read before they write), in one round trip: the readings' ledger
    # entries (which are new) and the windows of every fresh reading (the new ones' windows are among them).
    # The device came with the delivery's ledger entry (serialize_on).
    size = load_settings().window_seconds
    entries = {rid: ctx.entry_ref(store.READINGS_SCOPE, reading_key(device_id, rid)) for rid in fresh}
    window_refs = {key: store.window_ref(db, device_id, key, size) for key in aggregate(fresh.values(), size)}
    snapshots = ctx.get_all([*entries.values(), *window_refs.values()])
    counted = {snapshot.id for snapshot in snapshots[: len(entries)] if snapshot.exists}
    held = {snapshot.reference.path: snapshot.to_dict() for snapshot in snapshots[len(entries) :] if snapshot.exists}
    new = [reading for rid, reading in fresh.items() if entries[rid].id not in counted]
    if new:
        batch_windows = aggregate(new, size)
        device_ref = store.device_ref(db, device_id)
        device = ctx.get(device_ref)
        state, transitions = advance(store.device_state(device.to_dict() if device.exists else None), new, thresholds)

        for key, stats in batch_windows.items():
            ref = window_refs[key]
            tx.set(ref, store.window_fields(device_id, key, size, merged(held.get(ref.path), stats), now))
        tx.set(device_ref, store.device_fields(device_id, state, now))
        for reading in new:
            key, identity = reading_key(device_id, reading.reading_id), store.reading_identity(reading)
            ctx.mark_done(store.READINGS_SCOPE, key, identity, device_id=device_id, reading_id=reading.reading_id)
        for transition in transitions:
            tx.set(store.alert_ref(db, device_id, transition), store.alert_fields(device_id, transition, now))
            ctx.emit(
                ALERTS_TOPIC, TELEMETRY_ALERT, transition.data(device_id), subject=device_id, ordering_key=device_id
            )
    if stale:
        _record_stale(ctx, event, device_id, list(stale.values()))


def _thresholds(db: Any, device_id: str) -> dict[str, Any]:
    docs = {s.id: s.to_dict() or {} for s in db.get_all(store.threshold_refs(db, device_id)) if s.exists}
    return effective(
        load_settings().thresholds,
        _parsed(docs.get(store.GLOBAL_THRESHOLDS, {}).get("metrics"), store.GLOBAL_THRESHOLDS),
        _parsed(docs.get(device_id, {}).get("metrics"), device_id),
    )


def _parsed(raw: Any, doc_id: str) -> dict[str, Any]:
    """A malformed threshold document is ignored (and logged), so it never stops the statistics."""
    try:
        return parse_thresholds(raw, f"{store.THRESHOLDS}/{doc_id}.metrics")
    except ValueError as exc:
        log.error("ignoring a malformed threshold document", extra={"fields": {"error": str(exc)}})
        return {}


def _record_stale(ctx: HandlerContext, event: DomainEvent, device_id: str, stale: list[Any]) -> None:
    """Readings too old to count are a permanent failure of their own: recorded in the same transaction."""
    ctx.record_failure(
        "reading_too_old",
        f"{len(stale)} readings of device {device_id} are older than the retention window "
        f"({load_settings().limits.retention.total_seconds():.0f} s) and were not counted: "
        + ", ".join(sorted(r.reading_id for r in stale)[:20]),
        body=json.dumps([r.model_dump(mode="json") for r in stale]).encode(),
        part="stale",
    )
