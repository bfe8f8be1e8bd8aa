"""Counts what a service process asks of Firestore and Pub/Sub, for bench/capacity.py (never deployed).

Loaded by Python at start-up (``sitecustomize``) when bench/capacity.py puts this folder on a service's
``PYTHONPATH`` and sets ``CAPACITY_COUNTS_DIR``; it then wraps the generated (GAPIC) client methods every
Firestore and Pub/Sub call goes through, and writes the process's running totals to
``$CAPACITY_COUNTS_DIR/<K_SERVICE>-<pid>.json`` twice a second. The calls themselves are unchanged.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

_counts: Counter[str] = Counter()
_guard = threading.Lock()


def _add(**amounts: int) -> None:
    with _guard:
        _counts.update(amounts)


def _field(request: Any, name: str) -> Any:
    if request is None:
        return None
    return request.get(name) if isinstance(request, dict) else getattr(request, name, None)


def _counting_stream(stream: Any, counter: str) -> Any:
    for response in stream:
        if _field(response, "document") or _field(response, "found"):
            _add(**{counter: 1})
        yield response


def _wrap_firestore() -> None:
    from google.cloud.firestore_v1.services.firestore import client

    api = client.FirestoreClient
    batch_get, commit, begin = api.batch_get_documents, api.commit, api.begin_transaction
    run_query, rollback, get_document = api.run_query, api.rollback, api.get_document
    run_aggregation = api.run_aggregation_query

    def batch_get_documents(self: Any, request: Any = None, **kwargs: Any) -> Any:
        # A read that begins a transaction (eventkit's read-begun transactions) is one transaction attempt.
        # (``is not None``: an empty read-write option is a falsy message, yet it begins a transaction.)
        if isinstance(request, dict):
            begins = request.get("new_transaction") is not None
        else:
            begins = getattr(getattr(request, "_pb", None), "WhichOneof", lambda _: None)("consistency_selector") == (
                "new_transaction"
            )
        _add(firestore_batch_gets=1, firestore_tx_attempts=1 if begins else 0)
        return _counting_stream(batch_get(self, request, **kwargs), "firestore_reads")

    def commit_(self: Any, request: Any = None, **kwargs: Any) -> Any:
        from google.api_core.exceptions import Aborted

        writes = list(_field(request, "writes") or kwargs.get("writes") or [])
        _add(firestore_commits=1, firestore_writes=len(writes))
        try:
            return commit(self, request, **kwargs)
        except Aborted:  # a transaction that lost to another: the client library retries it
            _add(firestore_aborted=1)
            raise

    def begin_transaction(self: Any, request: Any = None, **kwargs: Any) -> Any:
        _add(firestore_transactions=1)
        return begin(self, request, **kwargs)

    def run_query_(self: Any, request: Any = None, **kwargs: Any) -> Any:
        _add(firestore_queries=1)
        return _counting_stream(run_query(self, request, **kwargs), "firestore_reads")

    def run_aggregation_query(self: Any, request: Any = None, **kwargs: Any) -> Any:
        _add(firestore_queries=1, firestore_reads=1)  # billed as one read per up to 1000 index entries
        return run_aggregation(self, request, **kwargs)

    def rollback_(self: Any, request: Any = None, **kwargs: Any) -> Any:
        _add(firestore_rollbacks=1)
        return rollback(self, request, **kwargs)

    def get_document_(self: Any, request: Any = None, **kwargs: Any) -> Any:
        _add(firestore_reads=1)
        return get_document(self, request, **kwargs)

    api.batch_get_documents = batch_get_documents
    api.commit = commit_
    api.begin_transaction = begin_transaction
    api.run_query = run_query_
    api.run_aggregation_query = run_aggregation_query
    api.rollback = rollback_
    api.get_document = get_document_


def _wrap_pubsub() -> None:
    from google.pubsub_v1.services.publisher import client

    api = client.PublisherClient
    publish = api.publish

    def publish_(self: Any, request: Any = None, **kwargs: Any) -> Any:
        messages = list(_field(request, "messages") or kwargs.get("messages") or [])
        size = 0
        for message in messages:
            attributes = _field(message, "attributes") or {}
            size += len(_field(message, "data") or b"") + sum(len(k) + len(v) for k, v in dict(attributes).items())
        _add(pubsub_publish_calls=1, pubsub_messages=len(messages), pubsub_bytes=size)
        return publish(self, request, **kwargs)

    api.publish = publish_


def _write_forever(path: Path) -> None:
    while True:
        with _guard:
            snapshot = dict(_counts)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(snapshot))
        temporary.replace(path)
        time.sleep(0.5)


def _start() -> None:
    out = os.environ.get("CAPACITY_COUNTS_DIR")
    service = os.environ.get("K_SERVICE")
    if not out or not service:
        return
    _wrap_firestore()
    _wrap_pubsub()

    def writer() -> None:  # one per process: gunicorn's workers are forked, and a fork keeps no threads
        path = Path(out) / f"{service}-{os.getpid()}.json"
        threading.Thread(target=_write_forever, args=(path,), daemon=True, name="capacity-counts").start()

    def in_child() -> None:
        global _guard
        _guard = threading.Lock()
        _counts.clear()
        writer()

    os.register_at_fork(after_in_child=in_child)
    writer()


_start()
