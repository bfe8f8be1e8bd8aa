"""A test consumer as its own process (run by the reliability suite, never deployed).

It handles ``shop.order.placed.v1`` by incrementing ``effects/<event id>.count`` in the ledger transaction, so a
count above 1 is a duplicate effect. Every delivery first leaves a marker in ``attempts`` (outside the
transaction). ``--hang before`` sleeps before the transaction, ``--hang after`` after its commit (before the
HTTP answer): the test SIGKILLs the process there. ``--concurrency`` bounds the handlers running at once.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

import flask
from google.cloud import firestore
from werkzeug.serving import make_server

from eventkit import Consumer, DomainEvent, HandlerContext
from eventkit.catalog import ORDER_PLACED

HANG_SECONDS = 300  # the test kills the process long before; bounded anyway


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hang", choices=["never", "before", "after"], default="never")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    consumer = Consumer(args.name)
    slots = threading.BoundedSemaphore(args.concurrency)

    @consumer.on(ORDER_PLACED, exactly_once=False)
    def place(event: DomainEvent, ctx: HandlerContext) -> None:
        ctx.db.collection("attempts").add({"event_id": event.id, "pid": os.getpid(), "consumer": args.name})
        if args.hang == "before":
            time.sleep(HANG_SECONDS)

        def effect(tx_ctx: HandlerContext) -> None:
            ref = tx_ctx.db.collection("effects").document(event.id)
            tx_ctx.transaction.set(ref, {"count": firestore.Increment(1), "consumer": args.name}, merge=True)

        ctx.transact(effect)
        if args.hang == "after":
            time.sleep(HANG_SECONDS)

    app = flask.Flask(args.name)

    def handle() -> Any:
        with slots:
            return consumer.handle(flask.request)

    app.add_url_rule("/", "handle", handle, methods=["POST"])
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    print(f"{args.name} listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
