"""One page of a collection, newest first, with a cursor: what the operator's listings (the console's failures and
orders pages, ``python -m dlq``) share. A page asks for one more document than it shows, to know whether there is
a next page, and reads only the listed fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_PAGE = 200


class CursorNotFound(Exception):
    """``after`` names no document: the listing cannot go on from it."""


def newest_first_page(
    collection: Any,
    *,
    fields: Sequence[str],
    by: str,
    status: str | None = None,
    limit: int = 50,
    after: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """``where(status == S).order_by(by, DESC)`` (every status: ``by`` alone), ``limit`` documents (1 to MAX_PAGE)
    after the document ``after``: (documents with their ``id``, the id to pass as ``after`` next, or None at the
    end). With a status, it needs the composite index ``status`` + ``by`` DESC (terraform/firestore.tf)."""
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    limit = max(1, min(limit, MAX_PAGE))
    query = collection.select(list(fields))
    if status:
        query = query.where(filter=FieldFilter("status", "==", status))
    query = query.order_by(by, direction=firestore.Query.DESCENDING)
    if after:
        cursor = collection.document(after).get([by])
        if not cursor.exists:
            raise CursorNotFound(after)
        query = query.start_after(cursor)
    found = [{"id": snapshot.id, **snapshot.to_dict()} for snapshot in query.limit(limit + 1).stream()]
    more = len(found) > limit
    return found[:limit], found[limit - 1]["id"] if more else None
