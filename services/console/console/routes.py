"""The console's routes: which page a request gets, and the two actions (replay, discard) behind a confirmation.

GET  /                              overview: the topology, with what waits on each subscription
GET  /failures?status=&after=       dead letters and failures, newest first, a page at a time
GET  /failures/<id>                 one record: decoded payload, attributes, the buttons
GET  /failures/<id>/<action>        the confirmation of replay or discard (a form that POSTs)
POST /failures/<id>/<action>        the action, then 303 to the list with what was done
GET|POST /images, /images/...      the images pages (console/images_pages.py)
GET  /telemetry, /telemetry/...     the devices and their charts (console/telemetry_pages.py)
GET  /orders, /orders/<id>         recent orders by status; one order and its path (orders_pages.py)
GET  /assets/<file>                 the stylesheet (nothing is loaded from outside the console; Flask keeps /static)
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from console import csrf
from console.images_pages import ImagePages
from console.order_records import Orders
from console.orders_pages import OrdersPages
from console.page_error import PageError
from console.pages import Response, decoded_payload, redirect, render, static_file
from console.telemetry_pages import TelemetryPages
from console.topology_view import TopologyView, load_view
from eventkit.errors import RetryableError
from eventkit.failure_records import NotNew, RecordNotFound, Records, subscription_id
from eventkit.failures import STATUS_DISCARDED, STATUS_NEW, STATUSES
from eventkit.processed import processed_since
from eventkit.replay import ReplayError, replay

log = logging.getLogger("console")
PAGE_SIZE = 50
MAX_FORM_BYTES = 4096
_RECORD_ID = re.compile(r"^(?!\.\.?$)[A-Za-z0-9._:-]{1,200}$")
ACTIONS = ("replay", "discard")
RECENT = timedelta(hours=1)  # the overview's "processed": from the start of the ten-minute window an hour ago
DONE = {"replayed": "Replayed", "discarded": "Discarded"}


class Console:
    def __init__(self, service: Any, records: Records | None = None, view: TopologyView | None = None) -> None:
        self.service = service
        self._records = records
        self._view = view

    @property
    def records(self) -> Records:
        return self._records or Records(self.service.db)

    @cached_property
    def images(self) -> ImagePages:
        return ImagePages(self.service)

    @cached_property
    def telemetry(self) -> TelemetryPages:
        return TelemetryPages(self.service)

    @property
    def view(self) -> TopologyView:
        return self._view or load_view()

    def handle(self, request: Any) -> Response:
        return self.service.serve(request, self.route, method=request.method, path=request.path)

    def route(self, request: Any) -> Response:
        token = csrf.token_of(request)
        try:
            answer = self._dispatch(request, token)
        except PageError as error:
            answer = _error(error.status, error.title, error.message, error.allow)
        except Exception as exc:  # Firestore or Pub/Sub unreachable, most likely: say so, keep the console up
            log.exception("page failed", extra={"fields": {"path": request.path}})
            answer = _error(503, "Try again", f"The console could not load this page: {exc}")
        body, status, headers = answer
        return body, status, {**headers, **csrf.cookie_header(request, token)}

    def _dispatch(self, request: Any, token: str) -> Response:
        parts = [part for part in request.path.split("/") if part]
        if parts[:1] == ["assets"] and len(parts) == 2 and request.method == "GET":
            found = static_file(parts[1])
            if found is None:
                raise PageError(404, "Not found", f"There is no file {parts[1]!r}.")
            return found
        if not parts:
            self._only(request, "GET")
            return self.overview()
        if parts[0] == "images":
            return self.images.route(request, parts, token)
        if parts[0] == "telemetry":
            return self.telemetry.route(request, parts)
        if parts[0] == "orders":
            return OrdersPages(Orders(self.service.db)).route(request, parts[1:])
        if parts[0] == "failures" and len(parts) == 1:
            self._only(request, "GET")
            return self.failures(request)
        if parts[0] == "failures" and len(parts) == 2:
            self._only(request, "GET")
            return self.failure(_record_id(parts[1]))
        if parts[0] == "failures" and len(parts) == 3 and parts[2] in ACTIONS:
            record_id = _record_id(parts[1])
            self._only(request, "GET", "POST")
            if request.method == "GET":
                return self.confirm(token, record_id, parts[2])
            return self.act(request, record_id, parts[2])
        raise PageError(404, "Not found", f"There is no page at {request.path}.")

    # --- pages ----------------------------------------------------------------------------------------------

    def overview(self) -> Response:
        view = self.view
        project = self.service.config.project
        paths = {s.name: f"projects/{project}/subscriptions/{s.name}" for s in view.subscriptions}
        with ThreadPoolExecutor(max_workers=1) as pool:  # the two sets of counts side by side
            processed = pool.submit(processed_since, self.service.db, paths.values(), datetime.now(UTC) - RECENT)
            waiting = self.records.waiting(paths.values())
            processed_counts = processed.result()
        by_subscription = {
            name: {kind: waiting.by_subscription[(path, kind)] for kind in ("permanent_failure", "dead_letter")}
            for name, path in paths.items()
        }
        total = waiting.total
        elsewhere = total - sum(sum(counts.values()) for counts in by_subscription.values())
        return render(
            "overview.html",
            page="overview",
            view=view,
            console_name=self.service.config.service,
            health=by_subscription,
            processed={name: processed_counts[path] for name, path in paths.items()},
            elsewhere=elsewhere,
            total=total,
        )

    def failures(self, request: Any) -> Response:
        status = request.args.get("status", STATUS_NEW)
        if status not in (*STATUSES, "all"):
            raise PageError(400, "Unknown status", f"Status must be one of {', '.join((*STATUSES, 'all'))}.")
        after = request.args.get("after") or None
        if after is not None:
            after = _record_id(after)
        try:
            page = self.records.page(status=None if status == "all" else status, limit=PAGE_SIZE, after=after)
        except RecordNotFound as exc:
            raise PageError(404, "Not found", str(exc)) from None
        done = request.args.get("done")
        return render(
            "failures.html",
            page="failures",
            status=status,
            statuses=(*STATUSES, "all"),
            records=page.records,
            next_url=f"/failures?{urlencode({'status': status, 'after': page.next_after})}"
            if page.next_after
            else None,
            first_url=f"/failures?{urlencode({'status': status})}" if after else None,
            done=DONE.get(done or ""),
            done_record=request.args.get("record", ""),
        )

    def failure(self, record_id: str) -> Response:
        record = self._get(record_id)
        how, text = decoded_payload(record)
        return render(
            "failure.html",
            page="failures",
            record=record,
            subscription=subscription_id(record.get("subscription")),
            payload_kind=how,
            payload_text=text,
            attributes=sorted((record.get("attributes") or {}).items()),
            actionable=record.get("status") == STATUS_NEW,
        )

    def confirm(self, token: str, record_id: str, action: str) -> Response:
        record = self._get(record_id)
        if record.get("status") != STATUS_NEW:
            raise PageError(409, "Already dealt with", f"Record {record_id} is {record.get('status')}; nothing to do.")
        if action == "replay" and not record.get("replayable"):
            raise PageError(409, "Cannot replay", f"Record {record_id} cannot be replayed (its payload is incomplete).")
        return render(
            "confirm.html",
            page="failures",
            record=record,
            action=action,
            topic=self._topic(record),
            csrf_field=csrf.FIELD,
            csrf_token=token,
        )

    def act(self, request: Any, record_id: str, action: str) -> Response:
        if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
            raise PageError(413, "Too large", f"A form is at most {MAX_FORM_BYTES} bytes.")
        try:
            csrf.check(request)
        except csrf.CrossSiteRequest as exc:
            log.warning("cross-site request refused", extra={"fields": {"reason": str(exc), "record_id": record_id}})
            raise PageError(403, "Refused", f"Refused: {exc}. Open the record again and confirm from there.") from None
        record = self._get(record_id)
        try:
            if action == "replay":
                done = replay(self.records, self.service.config.project, record, self._topic(record), once=True)
                log.info("replayed", extra={"fields": {"record_id": record_id, "message_id": done.message_id}})
            else:
                self.records.claim(record_id, STATUS_DISCARDED)
                log.info("discarded", extra={"fields": {"record_id": record_id}})
        except (ReplayError, NotNew) as exc:
            raise PageError(409, "Not done", str(exc)) from None
        except RetryableError as exc:  # the publish failed: the claim was undone, the record is new again
            raise PageError(503, "Not replayed", f"{exc}. The record is still new: try again.") from None
        return redirect("/failures?" + urlencode({"done": f"{action}ed", "record": record_id}))

    # --- helpers ------------------------------------------------------------------------------------------

    def _get(self, record_id: str) -> dict[str, Any]:
        try:
            return self.records.get(record_id, prefix=False)  # a link names the whole id: never scan for a prefix
        except RecordNotFound:
            raise PageError(404, "Not found", f"There is no record {record_id}.") from None

    def _topic(self, record: dict[str, Any]) -> str | None:
        """Where a replay goes: the record's topic, else its subscription's in the topology (no lookup needed)."""
        return record.get("topic") or self.view.topic_of(subscription_id(record.get("subscription")))

    @staticmethod
    def _only(request: Any, *methods: str) -> None:
        if request.method not in methods:
            use = " or ".join(methods)
            raise PageError(
                405, "Method not allowed", f"{request.method} is not allowed here; use {use}.", ", ".join(methods)
            )


def _error(status: int, title: str, message: str, allow: str | None = None) -> Response:
    return render("error.html", status, {"Allow": allow} if allow else {}, page="", title=title, message=message)


def _record_id(text: str) -> str:
    if not _RECORD_ID.match(text):
        raise PageError(404, "Not found", "That is not a record id.")
    return text
