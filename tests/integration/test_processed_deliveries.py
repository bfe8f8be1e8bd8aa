"""What the ledger keeps of each processed delivery, against the Firestore emulator: the note is written with the
COMPLETED entry (run_once) and with the lease, completed later (side_effect_once); an order's hops come back in
the order they completed; deliveries are counted per subscription from a window on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from eventkit.delivery_note import DeliveryNote, window_of
from eventkit.idempotency import FirestoreLedger, payload_hash
from eventkit.processed import hops_of, processed_since

HASH = payload_hash({"order": 1})
SUB = "projects/shop-test/subscriptions/"


def _note(event_type: str, subject: str = "orders/o-1", subscription: str = "inventory-order-events") -> DeliveryNote:
    return DeliveryNote(event_type, subject, "c" * 32, SUB + subscription)


def _nothing(_transaction: Any, _snapshots: list[Any]) -> None:
    return None


def test_a_processed_delivery_leaves_its_note_in_the_completed_entry(db: Any) -> None:
    ledger = FirestoreLedger(db)

    ledger.run_once("inventory", "e-1", HASH, _nothing, note=_note("shop.order.placed.v1"))
    entry = ledger.ref("inventory", "e-1").get().to_dict()

    assert {k: entry[k] for k in ("event_type", "subject", "trace_id", "subscription")} == {
        "event_type": "shop.order.placed.v1",
        "subject": "orders/o-1",
        "trace_id": "c" * 32,
        "subscription": SUB + "inventory-order-events",
    }
    assert entry["processed_window"] == window_of(entry["completed_at"])


def test_a_leased_side_effect_gets_its_window_only_when_completed(db: Any) -> None:
    ledger = FirestoreLedger(db)
    note = _note("shop.order.confirmed.v1", subscription="notifications-order-events")

    with ledger.side_effect_once("notifications", "e-2:ana", HASH, note=note) as run:
        assert run
        during = ledger.ref("notifications", "e-2:ana").get().to_dict()
    after = ledger.ref("notifications", "e-2:ana").get().to_dict()

    assert during["subject"] == "orders/o-1" and "processed_window" not in during
    assert after["status"] == "COMPLETED" and after["processed_window"] == window_of(after["completed_at"])
    assert [(h.consumer, h.event_type) for h in hops_of(db, "orders/o-1")] == [
        ("notifications", "shop.order.confirmed.v1")
    ]


def test_an_orders_hops_come_back_in_the_order_they_completed_and_no_other_orders(db: Any) -> None:
    ledger = FirestoreLedger(db)
    for consumer, key, event_type, subject in (
        ("inventory", "e-1", "shop.order.placed.v1", "orders/o-1"),
        ("payments", "e-1", "shop.order.placed.v1", "orders/o-1"),
        ("inventory", "e-9", "shop.order.placed.v1", "orders/o-2"),
        ("order-saga", "e-3", "shop.payment.authorized.v1", "orders/o-1"),
    ):
        ledger.run_once(consumer, key, HASH, _nothing, note=_note(event_type, subject))

    hops = hops_of(db, "orders/o-1")

    assert [(h.consumer, h.event_type) for h in hops] == [
        ("inventory", "shop.order.placed.v1"),
        ("payments", "shop.order.placed.v1"),
        ("order-saga", "shop.payment.authorized.v1"),
    ]
    assert all(a.at <= b.at for a, b in pairwise(hops))


def test_deliveries_are_counted_per_subscription_from_a_window_on(db: Any) -> None:
    ledger = FirestoreLedger(db)
    for i in range(3):
        ledger.run_once("inventory", f"i-{i}", HASH, _nothing, note=_note("t", subscription="inventory-order-events"))
    ledger.run_once("payments", "p-1", HASH, _nothing, note=_note("t", subscription="payments-order-events"))
    old = datetime.now(UTC) - timedelta(hours=3)
    ledger.ref("payments", "p-old").set(
        {"consumer": "payments", "status": "COMPLETED", "subscription": SUB + "payments-order-events",
         "completed_at": old, "processed_window": window_of(old)}
    )  # fmt: skip

    counts = processed_since(
        db, [SUB + s for s in ("inventory-order-events", "payments-order-events", "order-saga-order-events")],
        datetime.now(UTC) - timedelta(hours=1),
    )  # fmt: skip

    assert counts == {
        SUB + "inventory-order-events": 3,
        SUB + "payments-order-events": 1,
        SUB + "order-saga-order-events": 0,
    }
