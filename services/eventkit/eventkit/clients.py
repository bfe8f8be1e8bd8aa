"""Google Cloud clients, one per process, created on first use (never at import, never per request).

Client construction opens gRPC channels and reads credentials: too slow for the request path, and harmful to
cold starts if done at import. The emulator variables (``PUBSUB_EMULATOR_HOST``, ``FIRESTORE_EMULATOR_HOST``,
``STORAGE_EMULATOR_HOST``) are honoured by the client libraries themselves.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the libraries are imported lazily: importing them costs cold-start time
    from google.cloud import firestore, pubsub_v1, storage

# How long the Pub/Sub client holds a message for company before sending its batch; the caller waits that long
# for the message id (the outbox must know a message is durable). Only publishes made while others are under way
# use the batches (fewer, larger RPCs: less CPU under load); a publish alone is one Publish call at once instead
# of waiting 10 ms for company that is not coming (publish.send decides; bench/push_path.py, docs/performance.md:
# one event at a time, a publishing delivery's p50 16-17 ms -> 4-5 ms).
BATCH_LATENCY_SECONDS = 0.01

_lock = threading.Lock()
_clients: dict[str, object] = {}


def firestore_client(project: str) -> firestore.Client:
    def make() -> firestore.Client:
        from google.cloud import firestore

        return firestore.Client(project=project)

    return _get(f"firestore:{project}", make)  # type: ignore[return-value]


def publisher_client() -> pubsub_v1.PublisherClient:
    """The process's Pub/Sub client."""

    def make() -> pubsub_v1.PublisherClient:
        from google.cloud import pubsub_v1

        # Ordering must be enabled on the client for ordering keys to be accepted at all.
        return pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_latency=BATCH_LATENCY_SECONDS),
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
        )

    return _get("publisher", make)  # type: ignore[return-value]


def storage_client(project: str) -> storage.Client:
    def make() -> storage.Client:
        from google.cloud import storage

        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(project=project, credentials=AnonymousCredentials())
        return storage.Client(project=project)

    return _get(f"storage:{project}", make)  # type: ignore[return-value]


def _get(key: str, make: object) -> object:
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = make()  # type: ignore[operator]
                _clients[key] = client
    return client


def reset_clients() -> None:
    """Forget every client (tests that point a process at a different emulator)."""
    with _lock:
        _clients.clear()
