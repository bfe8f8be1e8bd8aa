"""What a handler gets beside its event: the handler API, and nothing else.

In the delivery's transaction (``exactly_once=True`` routes, or inside ``ctx.transact``):

- ``ctx.get(ref)``, ``ctx.get_all(refs)``: read documents (the route's ``serialize_on`` documents were read with
  the ledger entry: no round trip); ``ctx.transaction`` for writes (``set``, ``update``, ``create``, ``delete``);
- ``ctx.emit(topic, type, data)``: stage an event in the outbox; it commits with the writes, is published after;
- ``ctx.record_failure(reason, error, ...)``: file part of the delivery as a permanent failure;
- ``ctx.entry_ref(scope, key)``, ``ctx.mark_done(scope, key, identity)``: ledger entries of finer keys (one per
  reading of a batch).

Outside it (``exactly_once=False`` routes, after work outside Firestore):

- ``ctx.transact(write, key=)``: ``write(ctx)`` and the ledger entry in one transaction (``key``: when the
  delivery may rightly be done again under another key);
- ``ctx.side_effect_once(key)``: a lease for an effect outside Firestore (mail); ``False`` for a duplicate.

Always: ``ctx.db``, ``ctx.storage``, ``ctx.bucket(role)``, ``ctx.delivery`` (as read).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from eventkit.delivery import Delivery
from eventkit.delivery_note import DeliveryNote, delivery_record
from eventkit.events import DomainEvent
from eventkit.failures import FailedDelivery
from eventkit.idempotency import IdempotencyRecord, Once, ledger_document_id, payload_hash
from eventkit.outbox import StagedEvent
from eventkit.structured_log import current_trace

if TYPE_CHECKING:
    from eventkit.consumer import Consumer

log = logging.getLogger(__name__)

T = TypeVar("T")
_EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a52-58c4-4b8e-9d35-0c1f4e0b7a11")


@dataclass
class HandlerContext:
    delivery: Delivery
    _consumer: Consumer
    _hold: tuple[str, ...] = ()  # the route's serialize_on documents
    transaction: Any | None = None
    duplicate: bool = False  # set when the ledger says this delivery was already handled
    emitted: list[StagedEvent] = field(default_factory=list)
    _prefetched: dict[str, Any] = field(default_factory=dict)  # path -> snapshot read with the ledger entry
    _held: list[bool] = field(default_factory=lambda: [False])  # shared by the attempts' contexts of one delivery
    once_key: str | None = None  # transact(key=...): the ledger key of these writes, when not the delivery's
    noted: bool = True  # the route keeps a delivery note (Consumer.on(noted=...))

    @property
    def db(self) -> Any:
        return self._consumer.db

    @property
    def storage(self) -> Any:
        return self._consumer.storage

    def bucket(self, role: str) -> str:
        return self._consumer.config.bucket(role)

    @property
    def ledger_key(self) -> str:
        """What the ledger records these writes under: the delivery's key, unless transact() named another."""
        return self.once_key or self.delivery.key

    @property
    def note(self) -> DeliveryNote:
        """What the delivery note keeps of this delivery for the operator (its trace: the edge's if it had none)."""
        trace = current_trace()
        return DeliveryNote.of(self.delivery, trace.trace_id if trace else None)

    @property
    def cause(self) -> str:
        """What the outbox files these writes' events under: the ledger scope and key."""
        return f"{self._consumer.name}/{self.ledger_key}"

    # --- in the transaction -----------------------------------------------------------------------------------

    def get(self, ref: Any) -> Any:
        """``ref``'s snapshot in the transaction."""
        return self.get_all([ref])[0]

    def get_all(self, refs: Iterable[Any]) -> list[Any]:
        """Snapshots of ``refs`` in the transaction, in the order given: one read for those not yet read. A
        snapshot read with the ledger entry is as of the transaction's start, as a read now would be."""
        transaction = self._in_transaction("get()")
        refs = list(refs)
        missing = {ref.path: ref for ref in refs if ref.path not in self._prefetched}
        read: dict[str, Any] = {}
        if missing:
            read = {snapshot.reference.path: snapshot for snapshot in transaction.get_all(list(missing.values()))}
        return [self._prefetched[ref.path] if ref.path in self._prefetched else read[ref.path] for ref in refs]

    def emit(
        self, topic: str, event_type: str, data: Any, *, subject: str | None = None, ordering_key: str | None = None
    ) -> DomainEvent:
        """Stage an event in the outbox. Its id derives from (consumer, ledger key, type, n): a retried
        transaction or a redelivery makes the same id, and consumers downstream dedupe it."""
        transaction = self._in_transaction("emit()")
        seed = f"{self.cause}\0{event_type}\0{len(self.emitted)}"
        event_id = str(uuid.uuid5(_EVENT_ID_NAMESPACE, seed))
        event = self._consumer.event(event_type, data, subject=subject, event_id=event_id)
        self.emitted.append(
            self._consumer.stage(transaction, topic, event, cause=self.cause, ordering_key=ordering_key)
        )
        return event

    def record_failure(self, reason: str, error: str, *, body: bytes, part: str) -> str:
        """File ``part`` of this delivery (e.g. ``stale``) as a permanent failure, in the transaction: it commits
        with the rest of the delivery's writes, once. The record's id."""
        transaction = self._in_transaction("record_failure()")
        message = self.delivery.message
        failure = FailedDelivery(
            consumer=self._consumer.name,
            reason=reason,
            error=error,
            body=body,
            headers={},
            transport=self.delivery.transport.value,
            subscription=message.subscription if message else None,
            event_id=f"{self.delivery.key}/{part}",
            event_type=self.delivery.kind,
        )
        return self._consumer.failures.record_in(transaction, failure)

    def entry_ref(self, scope: str, key: str) -> Any:
        """The ledger entry document of ``key`` within ``scope`` (read it with :meth:`get_all`)."""
        return self._consumer.ledger.ref(scope, key)

    def mark_done(self, scope: str, key: str, identity: Any, **fields: Any) -> None:
        """Write ``key``'s COMPLETED ledger entry in the transaction (kept as long as the delivery's own)."""
        transaction = self._in_transaction("mark_done()")
        ledger = self._consumer.ledger
        record = IdempotencyRecord.completed(scope, key, payload_hash(identity), datetime.now(UTC), ledger.ttl)
        transaction.set(ledger.ref(scope, key), {**record.to_document(), **fields})

    # --- outside the transaction (exactly_once=False routes) ---------------------------------------------------

    def transact(self, write: Callable[[HandlerContext], T], *, key: str | None = None) -> Once[T]:
        """``write(ctx)`` once per key, atomically with the ledger entry, then publish what it emitted. A delivery
        whose write was already done is answered ``duplicate``. ``key`` defaults to the delivery's; name another
        when the same delivery may rightly be done again, e.g. an image under new rendition settings."""
        ctx = self if key is None else dataclasses.replace(self, once_key=key)
        once = self._consumer.run_once(ctx, write)
        self.duplicate = self.duplicate or once.duplicate
        return once

    @contextlib.contextmanager
    def side_effect_once(
        self, key: str | None = None, identity: Any = None, lease: timedelta = timedelta(minutes=2)
    ) -> Iterator[bool]:
        """``with ctx.side_effect_once() as run: if run: send()``: the effect at most once per ``key`` (default:
        the delivery's key; the same key should go downstream, for the window in which a lease expires mid-call).
        ``identity``: what a reuse of the key must match (default: the delivery's payload)."""
        consumer = self._consumer
        digest = self.payload_hash if identity is None else payload_hash(identity)
        with (
            consumer.holding(self),
            consumer.ledger.side_effect_once(consumer.name, key or self.delivery.key, digest, lease) as run,
        ):
            self.duplicate = self.duplicate or not run
            yield run
        if run and self.noted:  # the effect happened and its entry is completed: note it (delivery_note.py)
            entry_id = ledger_document_id(consumer.name, key or self.delivery.key)
            at = datetime.now(UTC)
            if note := delivery_record(consumer.db, self.note, consumer.name, entry_id, at, consumer.ledger.ttl):
                try:
                    note[0].set(note[1])
                except Exception as exc:  # the effect is done and recorded: a missing line of the path is all
                    log.warning("delivery note not written", extra={"fields": {"error": str(exc)}})

    @property
    def payload_hash(self) -> str:
        """What the ledger compares to catch a key reused for another payload."""
        delivery = self.delivery
        if delivery.event is not None:
            return payload_hash({"type": delivery.event.type, "data": delivery.event.data_json()})
        assert delivery.object is not None
        return payload_hash({"object": delivery.object.key})

    def _in_transaction(self, what: str) -> Any:
        if self.transaction is None:
            raise RuntimeError(f"{what} needs the ledger transaction: route with exactly_once=True or use transact()")
        return self.transaction
