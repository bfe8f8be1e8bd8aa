"""The Firestore queries the code runs have their composite indexes in Terraform, and no field a single-field query
needs is exempted from indexing (the emulator needs no index: only this check stands between a new query and
a FAILED_PRECONDITION in the cloud)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from infra_support import blocks, named, parse_dir, sub_blocks, unquote

# (collection, ((field, order), ...)): the queries that need a composite index, and where they are run.
COMPOSITE_QUERIES = {
    "outbox sweeper, per shard (eventkit/outbox.py)": (
        "outbox",
        (("shard", "ASCENDING"), ("sent", "ASCENDING"), ("created_at", "ASCENDING")),
    ),
    "failure records page (eventkit/failure_records.py)": (
        "failures",
        (("status", "ASCENDING"), ("last_seen", "DESCENDING")),
    ),
    "orders page (console/order_records.py)": ("orders", (("status", "ASCENDING"), ("created_at", "DESCENDING"))),
}
# Fields queried by equality alone or ordered alone: their single-field indexes must stay.
SINGLE_FIELD_QUERIES = {
    "every order, newest first (console/order_records.py)": ("orders", "created_at"),
    "unsent entries from before the shard (eventkit/outbox.py)": ("outbox", "sent"),
    "the failure records of one order's flow (eventkit/failure_records.py)": ("failures", "attributes.`ce-subject`"),
}


def composite_indexes(parsed: Mapping[str, dict[str, Any]]) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    found = set()
    for block in blocks(parsed, "resource"):
        if block.type != "google_firestore_index":
            continue
        fields = tuple((unquote(f["field_path"]), unquote(f["order"])) for f in sub_blocks(block.body, "fields"))
        found.add((unquote(block.body["collection"]), fields))
    return found


def unindexed_fields(parsed: Mapping[str, dict[str, Any]]) -> set[tuple[str, str]]:
    entries = named(parsed, "locals")["firestore_unindexed_fields"]
    return {(unquote(v["collection"]), unquote(v["field"])) for v in entries.values()}


@pytest.mark.parametrize("query", sorted(COMPOSITE_QUERIES))
def test_every_composite_query_has_its_index(query: str) -> None:
    assert COMPOSITE_QUERIES[query] in composite_indexes(parse_dir()), f"{query}: no google_firestore_index"


def test_no_field_a_single_field_query_needs_is_exempted_from_indexing() -> None:
    # (A composite index does not need its fields' single-field indexes: outbox/created_at is exempted, on purpose.)
    queried = set(SINGLE_FIELD_QUERIES.values())
    exempted = unindexed_fields(parse_dir())
    assert ("idempotency", "completed_at") in exempted  # the set is read, not empty
    assert exempted & queried == set()


def test_a_missing_index_is_caught(tmp_path: Any) -> None:
    from infra_support import TF_DIR

    text = (TF_DIR / "firestore.tf").read_text().replace('collection  = "orders"', 'collection  = "order"')
    (tmp_path / "firestore.tf").write_text(text)

    assert COMPOSITE_QUERIES["orders page (console/order_records.py)"] not in composite_indexes(parse_dir(tmp_path))
