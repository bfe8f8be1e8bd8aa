"""Recording the Firestore calls a real client makes (against the emulator), to assert how many round trips a
code path costs. The calls still go through; only their method and documents are noted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

RECORDED = ("batch_get_documents", "begin_transaction", "commit", "rollback", "get_document")


@dataclass(frozen=True)
class FirestoreCall:
    method: str
    documents: tuple[str, ...] = ()  # a read's document paths, relative ("products/MUG-1")
    in_transaction: bool = False  # a read that begins a transaction or reads in one (not a lock-free read)


def record_firestore_calls(db: Any, monkeypatch: pytest.MonkeyPatch) -> list[FirestoreCall]:
    """Every call ``db`` makes from here until the test ends, in order."""
    api, calls = db._firestore_api, []
    for method in RECORDED:
        real = getattr(api, method)

        def recording(*args: Any, _real: Any = real, _method: str = method, **kwargs: Any) -> Any:
            request = kwargs.get("request") or {}
            documents = tuple(path.split("/documents/", 1)[1] for path in request.get("documents", ()))
            # The client sends "transaction": None on lock-free reads; eventkit begins one with new_transaction.
            in_transaction = bool(request.get("transaction")) or "new_transaction" in request
            calls.append(FirestoreCall(_method, documents, in_transaction))
            return _real(*args, **kwargs)

        monkeypatch.setattr(api, method, recording)
    return calls


def counts(calls: list[FirestoreCall]) -> dict[str, int]:
    """Calls per method."""
    result: dict[str, int] = {}
    for call in calls:
        result[call.method] = result.get(call.method, 0) + 1
    return result
