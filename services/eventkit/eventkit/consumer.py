"""The event consumer: a :class:`~eventkit.service.Service` with routes. One HTTP entry point reads any delivery,
routes it by type, runs its handler exactly once, and maps the outcome to an HTTP answer.

A service's ``main.py`` reads like its flow::

    consumer = Consumer("inventory", topics=["order-events"])

    @consumer.on(ORDER_PLACED)                    # business writes + ledger entry in ONE transaction
    def reserve(event: DomainEvent, ctx: HandlerContext) -> None:
        ...ctx.transaction.update(...); ctx.emit(...)

    def handle_event(request):                    # the functions-framework target (signature type: http)
        return consumer.handle(request)

The delivery path, all of it in this module (docs/eventkit.md has the picture)::

    request ─▶ size check ─▶ read_delivery ─▶ route by type ─┬─ none: ignored (200)
                                                              ▼
            hold the delivery's locks (its ledger key + the route's serialize_on documents), once
                                                              ▼
            one transaction: ledger entry + serialize_on documents read ─▶ handler's writes + ctx.emit ─▶ commit
                                                              ▼
            release ─▶ publish what was emitted (outbox) ─▶ 200 processed | duplicate
    any PermanentError ─▶ failure record ─▶ 200 rejected;  RetryableError ─▶ 503;  a bug ─▶ 500

One bus topic carries many event types. In the cloud each subscription filters on ``ce-type``; the emulator
ignores filters, so a type with no route is acknowledged without effect (``ignored``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from eventkit.context import HandlerContext
from eventkit.delivery import Delivery, read_delivery
from eventkit.delivery_note import delivery_record
from eventkit.errors import MalformedDeliveryError, PermanentError
from eventkit.events import EventCatalog
from eventkit.failures import FailedDelivery
from eventkit.http_api import Response
from eventkit.idempotency import Once, ledger_document_id
from eventkit.keyed_locks import KeyedLocks
from eventkit.outcome import Outcome, Status, classify
from eventkit.service import Service, Stores
from eventkit.structured_log import bind, bind_trace

log = logging.getLogger("eventkit.consumer")
T = TypeVar("T")

Handler = Callable[[Any, HandlerContext], Any]
# The names of the documents a handler reads and then writes that other deliveries write too (hot documents).
SerializeOn = Callable[[Any], Iterable[str]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    exactly_once: bool
    serialize_on: SerializeOn | None = None
    noted: bool = True  # note each processed delivery under its event's subject (delivery_note.py)


class Consumer(Service):
    """Routes the deliveries of one consumer (the ledger's scope, ``name``) to its handlers."""

    def __init__(
        self,
        name: str,
        *,
        topics: Iterable[str] = (),
        buckets: Iterable[str] = (),
        catalog: EventCatalog | None = None,
        environ: Mapping[str, str] | None = None,
        stores: Stores | None = None,
    ) -> None:
        super().__init__(name, topics=topics, buckets=buckets, catalog=catalog, environ=environ, stores=stores)
        self._routes: dict[str, Route] = {}
        self._locks = KeyedLocks()

    def on(
        self, kind: str, *, exactly_once: bool = True, serialize_on: SerializeOn | None = None, noted: bool = True
    ) -> Callable[[Handler], Handler]:
        """Route ``kind`` (a catalog event type, or the storage finalize type) to the decorated handler.

        ``exactly_once=True`` runs the handler inside the ledger transaction (``ctx.transaction``): its Firestore
        writes, its events and the ledger entry commit together. With ``False`` the handler does its work outside
        Firestore first and then guards its effects itself (``ctx.transact``, ``ctx.side_effect_once``).

        ``serialize_on(payload)`` names the shared documents the handler reads and then writes, by path (e.g.
        ``products/MUG-1``): deliveries naming the same document take turns in this instance instead of colliding
        in Firestore (keyed_locks.py), and the transaction reads them with its ledger entry, in the round trip that
        begins it, so ``ctx.get`` of them costs nothing more.

        ``noted=False``: no delivery note (one write less per delivery) for a type nobody follows hop by hop.
        """
        if kind in self._routes:
            raise ValueError(f"{self.name}: {kind} already has a handler")

        def register(handler: Handler) -> Handler:
            self._routes[kind] = Route(handler, exactly_once, serialize_on, noted)
            return handler

        return register

    def handle(self, request: Any) -> Response:
        """The functions-framework entry point's body: a Flask request in, a (body, status, headers) out."""
        return self.serve(request, self._answer, consumer=self.name)

    def _answer(self, request: Any) -> Response:
        outcome, key = self._receive(request, dict(request.headers))
        return self.answer(outcome, key=key)

    def _receive(self, request: Any, headers: dict[str, str]) -> tuple[Outcome, str | None]:
        try:
            body = self.read_body(request)
        except PermanentError as error:
            return self.reject_unread(error, b"", headers), None
        try:
            delivery = read_delivery(headers, body, self.catalog, max_bytes=self.config.max_delivery_bytes)
        except Exception as exc:  # the same bytes fail the same way on redelivery: permanent
            error = (
                exc
                if isinstance(exc, PermanentError)
                else MalformedDeliveryError(f"unreadable delivery ({type(exc).__name__}: {exc})")
            )
            return self.reject_unread(error, body, headers), None
        bind_trace(delivery.trace)
        bind(
            event_id=delivery.event.id if delivery.event else None,
            event_type=delivery.kind,
            event_source=delivery.event.source if delivery.event else None,
            object=delivery.object.key if delivery.object else None,
            message_id=delivery.message.message_id if delivery.message else None,
            subscription=delivery.message.subscription if delivery.message else None,
            transport=delivery.transport.value,
        )
        outcome = self.process(delivery)
        if outcome.status is Status.REJECTED and outcome.failure_id is None:
            return self.reject(_failed_from(self.name, delivery, outcome, body, headers)), delivery.key
        return outcome, delivery.key

    def process(self, delivery: Delivery) -> Outcome:
        """Route a delivery already read and run its handler; every exception becomes an outcome (logged). A
        rejection is returned unrecorded (``failure_id`` None): :meth:`handle` records it."""
        route = self._routes.get(delivery.kind)
        if route is None:
            log.debug("ignored: no handler for this type")
            return Outcome(Status.IGNORED, "not_handled")
        payload = delivery.event if delivery.event is not None else delivery.object
        try:
            hold = tuple(route.serialize_on(payload)) if route.serialize_on else ()
            ctx = HandlerContext(delivery, self, hold, noted=route.noted)
            if route.exactly_once:
                duplicate = self.run_once(ctx, lambda attempt: route.handler(payload, attempt)).duplicate
            else:
                route.handler(payload, ctx)
                duplicate = ctx.duplicate
        except Exception as exc:
            outcome = classify(exc)
            if outcome.status is Status.RETRY:
                log.warning("will retry", extra={"fields": {"reason": outcome.reason, "error": str(exc)}})
            elif outcome.status is Status.ERROR:
                log.error("handler failed", exc_info=exc, extra={"fields": {"reason": outcome.reason}})
            return outcome
        outcome = Outcome(Status.DUPLICATE if duplicate else Status.PROCESSED)
        if not duplicate:
            self.delivery_counts.add(delivery.message.subscription if delivery.message else None)
        log.info(outcome.status.value)
        return outcome

    @contextlib.contextmanager
    def holding(self, ctx: HandlerContext) -> Iterator[None]:
        """The delivery's one lock acquisition: its ledger key (duplicates arriving together queue here instead
        of colliding in Firestore) and its serialize_on documents. Re-entered by the same delivery, a no-op."""
        if ctx._held[0]:
            yield
            return
        with self._locks.hold([f"{self.name}\0{ctx.delivery.key}", *ctx._hold]):
            ctx._held[0] = True
            try:
                yield
            finally:
                ctx._held[0] = False

    def run_once(self, ctx: HandlerContext, write: Callable[[HandlerContext], T]) -> Once[T]:
        """``write`` and the ledger entry in one transaction, under the delivery's locks; then (locks released)
        publish the events it emitted. A duplicate publishes whatever that delivery's first run left unsent (a
        publish that failed after the commit answered 503, and this redelivery is the retry)."""
        hot_refs = [self.db.document(path) for path in ctx._hold]
        attempts: list[HandlerContext] = []

        def in_transaction(transaction: Any, snapshots: list[Any]) -> T:
            # A fresh context per attempt: an aborted attempt is retried and reads the documents again.
            prefetched = {ref.path: snapshot for ref, snapshot in zip(hot_refs, snapshots, strict=True)}
            attempt = dataclasses.replace(ctx, transaction=transaction, emitted=[], _prefetched=prefetched)
            attempts.append(attempt)
            result = write(attempt)
            if ctx.noted:  # the delivery's note commits with its ledger entry (delivery_note.py)
                entry_id = ledger_document_id(self.name, ctx.ledger_key)
                if note := delivery_record(self.db, ctx.note, self.name, entry_id, datetime.now(UTC), self.ledger.ttl):
                    transaction.set(*note)
            return result

        with self.holding(ctx):
            key, digest = ctx.ledger_key, ctx.payload_hash
            once = self.ledger.run_once(self.name, key, digest, in_transaction, also_read=hot_refs)
        if once.duplicate:
            self.outbox.publish_for_cause(ctx.cause)
        elif attempts and attempts[-1].emitted:
            self.outbox.publish_committed(attempts[-1].emitted, in_request_line=True)  # ids in the "processed" line
        return once


def _failed_from(
    consumer: str, delivery: Delivery, outcome: Outcome, body: bytes, headers: Mapping[str, str]
) -> FailedDelivery:
    message = delivery.message
    return FailedDelivery(
        consumer=consumer,
        reason=outcome.reason or "permanent_failure",
        error=outcome.message or "",
        body=body,
        headers=headers,
        transport=delivery.transport.value,
        subscription=message.subscription if message else None,
        message_id=message.message_id if message else delivery.envelope_id,
        attributes=message.attributes if message else None,
        data=message.data if message else None,
        event_id=delivery.event.id if delivery.event else None,
        event_type=delivery.kind,
        delivery_attempt=message.delivery_attempt if message else None,
        ordering_key=message.ordering_key if message else None,
        publish_time=message.publish_time if message else None,
    )
