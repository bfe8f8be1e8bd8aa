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

_lock = threading.Lock()
_clients: dict[str, object] = {}


def firestore_client(project: str) -> firestore.Client:
    def make() -> firestore.Client:
        from google.cloud import firestore

        return firestore.Client(project=project)

    return _get(f"firestore:{project}", make)  # type: ignore[return-value]


def publisher_client() -> pubsub_v1.PublisherClient:
    """The process's Pub/Sub client. eventkit makes the Publish calls itself (publish_groups.py: no batch
    window), on this client's channel and credentials; its own batching ``publish()`` is not used."""

    def make() -> pubsub_v1.PublisherClient:
        from google.cloud import pubsub_v1

        return pubsub_v1.PublisherClient()

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
