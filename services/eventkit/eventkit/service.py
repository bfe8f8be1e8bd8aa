"""The runtime of one Cloud Run service: configuration, logging, clients and stores, and the answers every
entry point shares (readiness, the request's log context, refusing a body that is too large, rejecting a
delivery that can never succeed).

Every service builds one: an event consumer is a :class:`~eventkit.consumer.Consumer` (a ``Service`` with
routes); an HTTP API (orders, telemetry-ingest) and the dead-letter recorder use a plain ``Service``::

    service = Service("telemetry-ingest", topics=["telemetry"])

    def api(request):                                   # functions-framework target
        return service.serve_api(request, route)        # readiness, trace, ApiError -> JSON error

Clients and stores are created on first use, once per process (never at import: cold starts).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from eventkit.clients import firestore_client, storage_client
from eventkit.config import Config
from eventkit.errors import PayloadTooLargeError, PermanentError
from eventkit.failures import FailedDelivery, FailureRecorder
from eventkit.http_api import ApiError, Response
from eventkit.outcome import Outcome, Status
from eventkit.readiness import readiness_answer
from eventkit.structured_log import log_context, setup_logging
from eventkit.trace import TraceContext, trace_from_headers

if TYPE_CHECKING:
    from eventkit.delivery_counts import DeliveryCounts
    from eventkit.events import DomainEvent, EventCatalog
    from eventkit.idempotency import Ledger
    from eventkit.outbox import Outbox, StagedEvent, SweepResult
    from eventkit.publish import Publisher

log = logging.getLogger("eventkit.service")
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Stores:
    """Where a service keeps its state, when not the Firestore of its project (``eventkit.memory``: tests)."""

    db: Any
    ledger: Ledger
    failures: Any  # FailureRecorder's two methods: record(failure), record_in(transaction, failure)
    outbox: Outbox


class Service:
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
        """``catalog``: the event types this service knows (default: the shop's, ``eventkit.catalog.CATALOG``).
        The stores, the outbox and the event machinery are imported on first use: a service that never publishes
        (the dead-letter recorder) does not pay for them at start-up."""
        # Checked here, at start-up: a missing variable stops the process with a message naming it.
        self.config = Config.from_env(service=name, topics=topics, buckets=buckets, environ=environ)
        self.name = name
        self._catalog = catalog
        self._stores = stores
        self._requests = InFlight()  # requests being answered; the outbox batches its marks while there are others
        setup_logging(self.config.service, self.config.project)

    @cached_property
    def catalog(self) -> EventCatalog:
        if self._catalog is not None:
            return self._catalog
        from eventkit.catalog import CATALOG

        return CATALOG

    # --- clients and stores ------------------------------------------------------------------------------------

    @property
    def db(self) -> Any:
        return self._stores.db if self._stores else firestore_client(self.config.project)

    @property
    def storage(self) -> Any:
        return storage_client(self.config.project)

    @cached_property
    def ledger(self) -> Ledger:
        if self._stores:
            return self._stores.ledger
        from eventkit.idempotency import FirestoreLedger

        return FirestoreLedger(self.db, ttl=timedelta(days=self.config.ledger_ttl_days))

    @cached_property
    def failures(self) -> FailureRecorder:
        return self._stores.failures if self._stores else FailureRecorder(self.db)

    @cached_property
    def outbox(self) -> Outbox:
        if self._stores:
            return self._stores.outbox
        from eventkit.outbox import Outbox

        return Outbox(self.db, batch_marks=self._requests.others)

    @cached_property
    def delivery_counts(self) -> DeliveryCounts:
        from eventkit.delivery_counts import DeliveryCounts

        return DeliveryCounts(None if self._stores else self.db)  # in-memory stores: counted, never written

    @cached_property
    def publisher(self) -> Publisher:
        from eventkit.publish import Publisher

        return Publisher(self.config, self.catalog)

    # --- events ---------------------------------------------------------------------------------------------------

    def event(
        self, event_type: str, data: Any, *, subject: str | None = None, event_id: str | None = None
    ) -> DomainEvent:
        """A validated event of this service (not yet sent), carrying the current trace."""
        return self.publisher.event(event_type, data, subject=subject, event_id=event_id)

    def publish(self, topic: str, event: DomainEvent, *, ordering_key: str | None = None) -> str:
        """Publish now and wait for the message id (no outbox: for a caller that can answer 503 and be retried
        with the same event ids, like an ingest API). Raises RetryableError."""
        return self.publisher.publish(topic, event, ordering_key=ordering_key)

    def stage(
        self, writes: Any, topic: str, event: DomainEvent, *, cause: str, ordering_key: str | None = None
    ) -> StagedEvent:
        """Stage ``event`` in the outbox within ``writes`` (a transaction or a batch): it commits with them.
        Publish it after the commit with :meth:`publish_staged`; the sweeper publishes it if that never happens."""
        return self.outbox.add(writes, self.config.topic_path(topic), event, ordering_key=ordering_key, cause=cause)

    def publish_staged(self, staged: Iterable[StagedEvent]) -> int:
        """Publish committed outbox entries (RetryableError if any could not be: they stay for the sweeper)."""
        return self.outbox.publish_committed(staged)

    def sweep_outbox(self, older_than: timedelta) -> SweepResult:
        return self.outbox.sweep(older_than=older_than)

    # --- requests -------------------------------------------------------------------------------------------------

    def serve(self, request: Any, answer: Callable[[Any], Response], **context: Any) -> Response:
        """``GET /ready`` answered here; anything else by ``answer(request)``, within the request's log context
        (its trace, and ``context`` fields on every line).

        A request that brings no trace context starts a trace here (Cloud Run adds one to every request; the local
        stack and compose do not): the events it publishes carry it on, so every line of one flow shares it."""
        if probe := readiness_answer(request, self.config.service):
            return probe
        self._requests.enter()
        try:
            trace = trace_from_headers(dict(request.headers)) or TraceContext.new()
            with log_context(trace=trace, **context):
                return answer(request)
        finally:
            # The last request out writes the marks still queued, while the instance still has CPU.
            last_out = self._requests.leave() == 0
            if last_out and "outbox" in self.__dict__:
                self.outbox.flush_marks()
            if "delivery_counts" in self.__dict__ and self.delivery_counts.due(last_out):
                self.delivery_counts.flush()

    def serve_api(self, request: Any, route: Callable[[Any], Response]) -> Response:
        """:meth:`serve` for a JSON API: an :class:`ApiError` becomes its JSON error answer, logged."""

        def answer(request: Any) -> Response:
            try:
                return route(request)
            except ApiError as error:
                level = logging.WARNING if error.status >= 500 else logging.INFO
                log.log(level, "request refused", extra={"fields": {"status": error.status, "code": error.code}})
                return error.response()

        return self.serve(request, answer, method=request.method, path=request.path)

    def read_body(self, request: Any) -> bytes:
        """The request body, refused (PayloadTooLargeError) past ``MAX_DELIVERY_BYTES`` before it is read."""
        limit = self.config.max_delivery_bytes
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLargeError(f"request body is {request.content_length} bytes; the limit is {limit}")
        return request.get_data(cache=False)

    def reject(self, failure: FailedDelivery) -> Outcome:
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
        log.error(f"rejected: {failure.error}", extra={"fields": {"reason": failure.reason, "failure_id": record_id}})
        return Outcome(Status.REJECTED, failure.reason, failure.error, failure_id=record_id)

    @staticmethod
    def answer(outcome: Outcome, **fields: Any) -> Response:
        """A push endpoint's JSON answer: the outcome's status (and reason, message, failure record) and HTTP code."""
        body: dict[str, Any] = {"status": outcome.status.value, **fields}
        if outcome.reason:
            body["reason"] = outcome.reason
        if outcome.message and outcome.status is not Status.ERROR:
            body["message"] = outcome.message
        if outcome.failure_id:
            body["failure_id"] = outcome.failure_id
        return json.dumps(body), outcome.http_status, dict(JSON)

    def reject_unread(self, error: PermanentError, body: bytes, headers: Mapping[str, str]) -> Outcome:
        """:meth:`reject` for a body that could not be read: whatever envelope fields it still has are kept."""
        return self.reject(FailedDelivery.unparsed(self.name, error.reason, str(error), body, headers))


class InFlight:
    """A counter of work under way in this process: ``with counter:`` around it, ``counter.others()`` inside it."""

    def __init__(self) -> None:
        self._count, self._lock = 0, threading.Lock()

    def __enter__(self) -> None:
        self.enter()

    def enter(self) -> None:
        with self._lock:
            self._count += 1

    def __exit__(self, *_: object) -> None:
        self.leave()

    def leave(self) -> int:
        """Leave; how many are still under way (0: the caller was the last)."""
        with self._lock:
            self._count -= 1
            return self._count

    def others(self) -> bool:
        """Is anything else under way besides the caller's own (which it entered)?"""
        with self._lock:
            return self._count > 1
