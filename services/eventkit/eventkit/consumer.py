"""The consumer runtime: one HTTP entry point that reads any delivery, routes it, and maps the outcome.

A service's ``main.py`` reads like its flow::

    consumer = Consumer("inventory")

    @consumer.on(ORDER_PLACED)                    # business writes + ledger entry in ONE transaction
    def reserve(event: DomainEvent, ctx: HandlerContext) -> None:
        ...ctx.transaction.update(...)

    def handle_event(request):                    # the functions-framework target (signature type: http)
        return consumer.handle(request)

One bus topic carries many event types. In the cloud each subscription filters on ``ce-type``; the emulator
ignores filters, so a type with no route is acknowledged without effect (``ignored``).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, TypeVar

from eventkit.catalog import CATALOG
from eventkit.clients import firestore_client
from eventkit.config import Config
from eventkit.delivery import Delivery, read_delivery
from eventkit.errors import MalformedDeliveryError, PayloadTooLargeError, PermanentError
from eventkit.events import DomainEvent, EventCatalog
from eventkit.failures import FailedDelivery, FailureRecorder
from eventkit.idempotency import FirestoreLedger, Once, payload_hash
from eventkit.keyed_locks import KeyedLocks
from eventkit.outbox import Outbox, StagedEvent
from eventkit.outcome import Outcome, Status, classify
from eventkit.publish import Publisher
from eventkit.readiness import readiness_answer
from eventkit.structured_log import bind, bind_trace, log_context, setup_logging
from eventkit.trace import trace_from_headers

log = logging.getLogger("eventkit.consumer")


@dataclass
class HandlerContext:
    """What a handler gets beside its event: the delivery, and the transaction when ``exactly_once``.

    ``emit`` stages an outgoing event in the transactional outbox: it commits with the handler's writes and is
    published after the commit. Its CloudEvent id is derived from (consumer, delivery key, type, n), so a
    retried transaction or a redelivery produces the same id and downstream consumers dedupe it.

    ``get`` and ``get_all`` read documents in the transaction. The route's ``serialize_on`` documents were
    already read with the ledger entry, in the round trip that began the transaction: those cost no read.
    """

    delivery: Delivery
    consumer: Consumer
    transaction: Any | None = None
    emitted: list[StagedEvent] = field(default_factory=list)
    duplicate: bool = False  # set by transact() when the ledger says this delivery was already handled
    hold: tuple[str, ...] = ()  # the route's serialize_on names, held around transact()'s transaction
    prefetched: dict[str, Any] = field(default_factory=dict)  # document path → snapshot read with the ledger

    @property
    def db(self) -> Any:
        return self.consumer.db

    def get(self, ref: Any) -> Any:
        """``ref``'s snapshot in the transaction (already read if ``serialize_on`` named it)."""
        return self.get_all([ref])[0]

    def get_all(self, refs: Iterable[Any]) -> list[Any]:
        """Snapshots of ``refs`` in the transaction, in the order given: one read for those not yet read.

        A snapshot read with the ledger entry is as of the transaction's start, as a read now would be: the
        transaction has held its lock since.
        """
        if self.transaction is None:
            raise RuntimeError("get() reads in the ledger transaction: route with exactly_once=True or use transact()")
        refs = list(refs)
        missing = {ref.path: ref for ref in refs if ref.path not in self.prefetched}
        read: dict[str, Any] = {}
        if missing:
            read = {snapshot.reference.path: snapshot for snapshot in self.transaction.get_all(list(missing.values()))}
        return [self.prefetched[ref.path] if ref.path in self.prefetched else read[ref.path] for ref in refs]

    @property
    def cause(self) -> str:
        return f"{self.consumer.name}/{self.delivery.key}"

    def emit(
        self, topic: str, event_type: str, data: Any, *, subject: str | None = None, ordering_key: str | None = None
    ) -> DomainEvent:
        if self.transaction is None:
            raise RuntimeError("emit() needs the ledger transaction: route with exactly_once=True or use transact()")
        seed = f"{self.cause}\0{event_type}\0{len(self.emitted)}"
        event = self.consumer.publisher.event(
            event_type, data, subject=subject, event_id=str(uuid.uuid5(_EVENT_ID_NAMESPACE, seed))
        )
        staged = self.consumer.outbox.add(
            self.transaction,
            self.consumer.config.topic_path(topic),
            event,
            ordering_key=ordering_key,
            cause=self.cause,
        )
        self.emitted.append(staged)
        return event

    def transact(self, write: Callable[[HandlerContext], T]) -> Once[T]:
        """For ``exactly_once=False`` handlers: run ``write(ctx)`` once per delivery key, atomically with the
        ledger entry (after any work outside Firestore, e.g. an idempotent gateway call), then publish what it
        emitted. A delivery whose write was already done is answered ``duplicate``."""
        once = self.consumer.run_once(self.delivery, write, hold=self.hold)
        self.duplicate = self.duplicate or once.duplicate
        return once


_EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a52-58c4-4b8e-9d35-0c1f4e0b7a11")
T = TypeVar("T")


Handler = Callable[[Any, HandlerContext], Any]


# The names of the documents a handler reads and then writes that other deliveries write too (hot documents).
SerializeOn = Callable[[Any], Iterable[str]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    exactly_once: bool
    serialize_on: SerializeOn | None = None


class Consumer:
    """Routes deliveries of one consumer (the ledger's scope) to its handlers."""

    def __init__(
        self,
        name: str,
        *,
        topics: Iterable[str] = (),
        buckets: Iterable[str] = (),
        catalog: EventCatalog = CATALOG,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        # Checked here, at start-up: a missing variable stops the process with a message naming it.
        self.config = Config.from_env(service=name, topics=topics, buckets=buckets, environ=environ)
        self.name = name
        self.catalog = catalog
        self._routes: dict[str, Route] = {}
        self._hot_documents = KeyedLocks()
        setup_logging(self.config.service, self.config.project)

    # Clients and stores are created on first use, once per process.
    @property
    def db(self) -> Any:
        return firestore_client(self.config.project)

    @cached_property
    def ledger(self) -> FirestoreLedger:
        return FirestoreLedger(self.db, ttl=timedelta(days=self.config.ledger_ttl_days))

    @cached_property
    def failures(self) -> FailureRecorder:
        return FailureRecorder(self.db)

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.db, batch_marks=True)

    @cached_property
    def publisher(self) -> Publisher:
        return Publisher(self.config, self.catalog)

    def on(
        self, kind: str, *, exactly_once: bool = True, serialize_on: SerializeOn | None = None
    ) -> Callable[[Handler], Handler]:
        """Route ``kind`` (a catalog event type, or the storage finalize type) to the decorated handler.

        ``exactly_once=True`` runs the handler inside the ledger transaction (``ctx.transaction``): its
        Firestore writes and the ledger entry commit together. With ``False`` the handler guards its own
        effects, e.g. with ``consumer.ledger.side_effect_once``.

        ``serialize_on(payload)`` names the shared documents the handler's transaction reads and then writes,
        by document path (e.g. ``products/MUG-1``): deliveries naming the same document run their transactions
        one at a time in this instance instead of colliding in Firestore (keyed_locks.py). The publish after the
        commit is not held up. The transaction reads those documents with its ledger entry, in the round trip
        that begins it, so the handler's ``ctx.get``/``ctx.get_all`` of them need no round trip of their own.
        """
        if kind in self._routes:
            raise ValueError(f"{self.name}: {kind} already has a handler")

        def register(handler: Handler) -> Handler:
            self._routes[kind] = Route(handler, exactly_once, serialize_on)
            return handler

        return register

    @property
    def handled_kinds(self) -> list[str]:
        return sorted(self._routes)

    def handle(self, request: Any) -> tuple[str, int, dict[str, str]]:
        """The functions-framework entry point's body: a Flask request in, a (body, status, headers) out."""
        if probe := readiness_answer(request, self.config.service):
            return probe
        headers = dict(request.headers)
        with log_context(trace=trace_from_headers(headers), consumer=self.name):
            outcome, key = self._handle(request, headers)
            body = {"status": outcome.status.value, "key": key}
            if outcome.reason:
                body["reason"] = outcome.reason
            if outcome.message and outcome.status is not Status.ERROR:
                body["message"] = outcome.message
            if outcome.failure_id:
                body["failure_id"] = outcome.failure_id
            return json.dumps(body), outcome.http_status, {"Content-Type": "application/json"}

    def _handle(self, request: Any, headers: dict[str, str]) -> tuple[Outcome, str | None]:
        limit = self.config.max_delivery_bytes
        if request.content_length is not None and request.content_length > limit:
            error = PayloadTooLargeError(f"request body is {request.content_length} bytes; the limit is {limit}")
            return self._reject(error, FailedDelivery(self.name, error.reason, str(error), b"", headers)), None
        body = request.get_data(cache=False)

        try:
            delivery = read_delivery(headers, body, self.catalog, max_bytes=limit)
        except Exception as exc:  # the same bytes fail the same way on redelivery: permanent
            error = (
                exc
                if isinstance(exc, PermanentError)
                else MalformedDeliveryError(f"unreadable delivery ({type(exc).__name__}: {exc})")
            )
            failure = FailedDelivery.unparsed(self.name, error.reason, str(error), body, headers)
            return self._reject(error, failure), None

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
        route = self._routes.get(delivery.kind)
        if route is None:
            log.debug("ignored: no handler for this type")
            return Outcome(Status.IGNORED, "not_handled"), delivery.key

        try:
            outcome = self._run(route, delivery)
        except Exception as exc:
            outcome = classify(exc)
            if outcome.status is Status.REJECTED:
                return self._reject(exc, _failed_from(self.name, delivery, exc, body, headers)), delivery.key
            if outcome.status is Status.RETRY:
                log.warning("will retry", extra={"fields": {"reason": outcome.reason, "error": str(exc)}})
            else:
                log.error("handler failed", exc_info=exc, extra={"fields": {"reason": outcome.reason}})
            return outcome, delivery.key
        log.info(outcome.status.value)
        return outcome, delivery.key

    def _run(self, route: Route, delivery: Delivery) -> Outcome:
        payload = delivery.event if delivery.event is not None else delivery.object
        hold = tuple(route.serialize_on(payload)) if route.serialize_on else ()
        if not route.exactly_once:
            ctx = HandlerContext(delivery, self, hold=hold)
            route.handler(payload, ctx)
            return Outcome(Status.DUPLICATE if ctx.duplicate else Status.PROCESSED)
        once = self.run_once(delivery, lambda ctx: route.handler(payload, ctx), hold=hold)
        return Outcome(Status.DUPLICATE if once.duplicate else Status.PROCESSED)

    def run_once(
        self, delivery: Delivery, write: Callable[[HandlerContext], T], *, hold: Iterable[str] = ()
    ) -> Once[T]:
        """``write`` and the ledger entry in one transaction; then publish the events it emitted.

        A duplicate publishes whatever that delivery's first run left unsent (a publish that failed after the
        commit answered 503, and this redelivery is the retry). ``hold``: shared documents the transaction
        reads and writes (see ``on(serialize_on=...)``); their locks are held until the commit.
        """
        attempts: list[HandlerContext] = []
        hold = tuple(hold)
        # The hot documents are read with the ledger entry, in the round trip that begins the transaction.
        hot_refs = [self.db.document(name) for name in hold]

        def in_transaction(transaction: Any, snapshots: list[Any]) -> T:
            # Fresh per attempt: aborted attempts retry, and each attempt reads the documents again.
            prefetched = {ref.path: snapshot for ref, snapshot in zip(hot_refs, snapshots, strict=True)}
            ctx = HandlerContext(delivery, self, transaction, prefetched=prefetched)
            attempts.append(ctx)
            return write(ctx)

        digest = payload_hash(_payload_identity(delivery))
        with self._hot_documents.hold(hold):
            once = self.ledger.run_once_reading(self.name, delivery.key, digest, hot_refs, in_transaction)
        if once.duplicate:
            self.outbox.publish_for_cause(f"{self.name}/{delivery.key}")
        elif attempts and attempts[-1].emitted:
            self.outbox.publish_committed(attempts[-1].emitted, in_request_line=True)  # ids in the "processed" line
        return once

    def _reject(self, error: BaseException, failure: FailedDelivery) -> Outcome:
        """Acknowledge a permanent failure, but only once it is recorded: if recording fails, retry instead."""
        try:
            record_id = self.failures.record(failure)
        except Exception as exc:
            log.error(
                "could not record a permanent failure; asking for redelivery so it is not lost",
                exc_info=exc,
                extra={"fields": {"reason": failure.reason, "error": failure.error}},
            )
            return Outcome(Status.RETRY, "failure_not_recorded", str(exc))
        log.error(
            f"rejected: {failure.error}",
            extra={"fields": {"reason": failure.reason, "failure_id": record_id}},
        )
        return Outcome(Status.REJECTED, failure.reason, str(error), failure_id=record_id)


def _payload_identity(delivery: Delivery) -> Any:
    if delivery.event is not None:
        return {"type": delivery.event.type, "data": delivery.event.data_json()}
    assert delivery.object is not None
    return {"object": delivery.object.key}


def _failed_from(
    consumer: str, delivery: Delivery, error: BaseException, body: bytes, headers: Mapping[str, str]
) -> FailedDelivery:
    reason = getattr(error, "reason", type(error).__name__)
    message = delivery.message
    return FailedDelivery(
        consumer=consumer,
        reason=reason,
        error=str(error),
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
