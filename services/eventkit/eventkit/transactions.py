"""Running a Firestore transaction under contention: retry aborts with jittered backoff, within a budget.

Firestore locks the documents a transaction reads. Two transactions that read the same document and then
write it abort each other ("Transaction lock timeout"); the client library retries at once, which can repeat
the collision. Retrying with jitter spreads the attempts; past the budget the caller gets a
:class:`RetryableError` (a consumer answers 503 and Pub/Sub redelivers; an API answers 503).

Two ways in:

- :func:`run_transaction` runs a ``@firestore.transactional`` function (BeginTransaction, the function's reads
  and writes, Commit).
- :func:`run_read_write` begins the transaction *with its first read* (BatchGetDocuments with
  ``new_transaction``, as the protocol allows), so a read-then-write transaction costs two round trips instead of
  three. The Python client always sends BeginTransaction first, so this one function drives the client's
  transaction object itself (see :func:`_begin_with_reads`), through private names of the client; the ledger runs
  every event through it. If a client release renames any of them, it falls back to the public transaction API
  (one round trip more, same result) and logs so once: an upgrade costs speed, never correctness.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from eventkit.errors import RetryableError

log = logging.getLogger(__name__)

T = TypeVar("T")
CONTENTION_BUDGET_SECONDS = 30.0


def run_transaction(
    client: Any, attempt: Callable[[Any], T], what: str, budget: float = CONTENTION_BUDGET_SECONDS
) -> T:
    """Run a ``@firestore.transactional`` function until it commits, or raise RetryableError after ``budget``."""
    return _retry_aborts(lambda: attempt(client.transaction(max_attempts=1)), what, budget)


def run_read_write(
    client: Any,
    first_reads: Sequence[Any],
    body: Callable[[Any, list[Any]], T],
    what: str,
    budget: float = CONTENTION_BUDGET_SECONDS,
) -> T:
    """``body(transaction, snapshots)`` in a transaction begun by reading ``first_reads``; commit what it wrote.

    ``snapshots`` are those documents' snapshots in the order given. ``body`` may run more than once (aborts
    are retried), so it must only read and write through the transaction. A body that writes nothing, or
    raises, or whose commit fails, rolls the transaction back (releasing its locks at once: the emulator holds
    an aborted transaction's read locks until then, and its rivals would wait for them).
    """

    # The first aborted attempt's transaction id. Every retry names it (``retry_transaction``, as the client
    # library's own retries do), so the server keeps the retried transaction's place among its rivals instead of
    # treating each retry as the newest — without it, ten rivals on one document could abort each other until
    # the budget ran out.
    first_try: list[bytes] = []
    if not read_begun_supported(client):
        return _retry_aborts(lambda: _public_read_write(client, first_reads, body), what, budget)

    def attempt() -> T:
        transaction = client.transaction(max_attempts=1)
        try:
            snapshots = _begin_with_reads(transaction, first_reads, retry_id=first_try[0] if first_try else None)
            result = body(transaction, snapshots)
            if transaction._write_pbs:
                transaction._commit()
            else:
                transaction._rollback()
        except BaseException:
            if not first_try and transaction.in_progress:
                first_try.append(transaction._id)
            _rollback_quietly(transaction)
            raise
        return result

    return _retry_aborts(attempt, what, budget)


# What _begin_with_reads and run_read_write use of the client beyond its public API.
_CLIENT_NAMES = ("_firestore_api", "_database_string", "_rpc_metadata")
_TRANSACTION_NAMES = ("_client", "_write_pbs", "_commit", "_rollback", "_id", "in_progress")
_supported: dict[type, bool] = {}
_checking = threading.Lock()


def read_begun_supported(client: Any) -> bool:
    """Whether this client type still has the private names the read-begun transaction needs (checked once)."""
    kind = type(client)
    if kind in _supported:
        return _supported[kind]
    with _checking:
        if kind in _supported:  # another thread checked meanwhile
            return _supported[kind]
        try:
            from google.cloud.firestore_v1.base_client import _parse_batch_get  # noqa: F401

            transaction = client.transaction(max_attempts=1)
            missing = [name for name in _CLIENT_NAMES if not hasattr(client, name)]
            missing += [name for name in _TRANSACTION_NAMES if not hasattr(transaction, name)]
        except ImportError as exc:
            missing = [str(exc)]
        if missing:
            log.warning(
                "the Firestore client lacks what a read-begun transaction needs; using the public transaction API "
                "(one more round trip per transaction)",
                extra={"fields": {"missing": missing}},
            )
        _supported[kind] = not missing
    return _supported[kind]


def _public_read_write(client: Any, refs: Sequence[Any], body: Callable[[Any, list[Any]], T]) -> T:
    """:func:`run_read_write` on the public API: BeginTransaction, the reads, ``body``, Commit (or Rollback)."""
    from google.cloud import firestore

    @firestore.transactional
    def in_transaction(transaction: Any) -> T:
        by_path = {snapshot.reference.path: snapshot for snapshot in transaction.get_all(list(refs))}
        return body(transaction, [by_path[ref.path] for ref in refs])

    return in_transaction(client.transaction(max_attempts=1))


def _retry_aborts(attempt: Callable[[], T], what: str, budget: float) -> T:
    from google.api_core.exceptions import Aborted

    deadline = time.monotonic() + budget
    tries = 0
    while True:
        try:
            return attempt()
        except (Aborted, ValueError) as exc:
            # The client reports a failed commit as ValueError("Failed to commit ...") from Aborted.
            if not (isinstance(exc, Aborted) or isinstance(exc.__cause__, Aborted)):
                raise
            tries += 1
            if time.monotonic() >= deadline:
                raise RetryableError(f"transaction for {what} kept aborting ({tries} tries)") from exc
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2**tries)))


def _begin_with_reads(transaction: Any, refs: Sequence[Any], retry_id: bytes | None = None) -> list[Any]:
    """One BatchGetDocuments that begins ``transaction`` (read-write, retrying ``retry_id`` if given) and reads
    ``refs`` in it.

    Uses the client's own request plumbing and response parser; its private names are pinned by
    constraints.txt and exercised against the emulator by tests/integration/test_transactions.py.
    """
    from google.cloud.firestore_v1.base_client import _parse_batch_get
    from google.cloud.firestore_v1.types import common

    client = transaction._client
    prefix = f"{client._database_string}/documents/"
    by_path = {prefix + ref.path: ref for ref in refs}
    request = {
        "database": client._database_string,
        "documents": list(by_path),
        "new_transaction": common.TransactionOptions(
            read_write=common.TransactionOptions.ReadWrite(retry_transaction=retry_id)
        ),
    }
    snapshots: dict[str, Any] = {}
    for response in client._firestore_api.batch_get_documents(request=request, metadata=client._rpc_metadata):
        if response.transaction:
            transaction._id = response.transaction
        if response._pb.WhichOneof("result"):  # the emulator sends the transaction id in a response of its own
            snapshot = _parse_batch_get(response, by_path, client)
            snapshots[snapshot.reference.path] = snapshot
    if not transaction.in_progress:
        raise RuntimeError("Firestore answered a read with new_transaction without a transaction id")
    return [snapshots[ref.path] for ref in refs]


def _rollback_quietly(transaction: Any) -> None:
    """Roll back after a failure, if the transaction is still open; the failure is the exception worth raising."""
    if not transaction.in_progress:  # never begun, or already committed or rolled back
        return
    try:
        transaction._rollback()
    except Exception:  # the transaction's locks then expire on the server
        log.warning("rollback failed", exc_info=True)
