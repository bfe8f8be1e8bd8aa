"""``python -m dlq list|show|replay|discard|recount`` (``make dlq ARGS="list"``).

Expected failures (no stack, unknown record, a record that cannot be replayed) print one ``dlq: error: ...``
line and exit 1, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dlq.target import Target, TargetError, choose_target
from eventkit.failure_records import Filters, NotNew, RecordNotFound, Records
from eventkit.failures import STATUS_DISCARDED, STATUS_NEW, STATUSES
from eventkit.replay import AlreadyTaken, ReplayError, replay

DEFAULT_STATE_DIR = Path(__file__).resolve().parent.parent / ".local"
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        target = choose_target(args.project, args.state_dir)
        from eventkit.clients import firestore_client

        records = Records(firestore_client(target.project))
        return int(args.command(args, target, records))
    except (TargetError, RecordNotFound, ReplayError) as exc:
        print(f"dlq: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dlq",
        description="Dead letters and permanent failures: list, show, replay, discard (docs/dead-letters.md).",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="local stack (default: %(default)s)")
    where.add_argument("--project", help="a Google Cloud project (Application Default Credentials; no emulators)")
    commands = parser.add_subparsers(required=True, metavar="{list,show,replay,discard,recount}")

    listing = commands.add_parser("list", help="records, most recent failure first")
    listing.add_argument("--subscription", help="only this subscription (id or full path)")
    listing.add_argument("--since", type=_since, help="last failed at or after: RFC 3339 time, or 30m / 2h / 7d ago")
    listing.add_argument("--status", choices=[*STATUSES, "all"], default="all", help="default: %(default)s")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(command=_list)

    show = commands.add_parser("show", help="one record in full")
    show.add_argument("id", help="record id, or a unique prefix of it")
    show.set_defaults(command=_show)

    again = commands.add_parser("replay", help="republish to the original topic (same attributes, same ce-id)")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", help="record id, or a unique prefix of it")
    which.add_argument("--all", action="store_true", help="every record with status new")
    again.add_argument("--subscription", help="with --all: only this subscription")
    again.add_argument("--topic", help="publish here instead of the topic of the record's subscription")
    again.set_defaults(command=_replay)

    discard = commands.add_parser("discard", help="mark a record as dealt with, without replaying it")
    discard.add_argument("id", help="record id, or a unique prefix of it")
    discard.set_defaults(command=_discard)

    recount = commands.add_parser(
        "recount", help="count the records waiting (status new) and set the console's counters to match"
    )
    recount.set_defaults(command=_recount)
    return parser


def _list(args: argparse.Namespace, target: Target, records: Records) -> int:
    status = None if args.status == "all" else args.status
    found = records.list(Filters(subscription=args.subscription, since=args.since, status=status))
    if args.json:
        for record in found:
            print(json.dumps(_jsonable(_summary(record))))
        return 0
    if not found:
        print(f"no records ({target.description})")
        return 0
    rows = [[str(v) if v is not None else "-" for v in _summary(r).values()] for r in found]
    print(_table(list(_summary(found[0]).keys()), rows))
    return 0


def _show(args: argparse.Namespace, target: Target, records: Records) -> int:
    print(json.dumps(_jsonable(records.get(args.id)), indent=2, sort_keys=True))
    return 0


def _replay(args: argparse.Namespace, target: Target, records: Records) -> int:
    if args.subscription and not args.all:
        raise ReplayError("--subscription goes with --all; a single record already names its subscription")
    if not args.all:
        done = replay(records, target.project, records.get(args.id), args.topic)
        print(f"replayed {done.record_id} to {done.topic} as message {done.message_id}")
        return 0
    # Each record is claimed new -> replayed before it is published (as the console does), so two operators
    # replaying everything at once, or a console click meanwhile, publish each record once.
    replayed = failed = taken = 0
    for record in records.list(Filters(subscription=args.subscription, status=STATUS_NEW)):
        try:
            done = replay(records, target.project, record, args.topic, once=True)
        except AlreadyTaken as exc:
            taken += 1
            print(f"dlq: left: {exc}", file=sys.stderr)
            continue
        except ReplayError as exc:
            failed += 1
            print(f"dlq: skipped: {exc}", file=sys.stderr)
            continue
        replayed += 1
        print(f"replayed {done.record_id} to {done.topic} as message {done.message_id}")
    print(f"{replayed} replayed, {failed} skipped" + (f", {taken} taken meanwhile" if taken else ""))
    return 1 if failed else 0


def _discard(args: argparse.Namespace, target: Target, records: Records) -> int:
    record = records.get(args.id)
    try:
        records.claim(record["id"], STATUS_DISCARDED)  # only a new record: a replayed one stays replayed
    except NotNew as exc:
        raise ReplayError(f"{exc}; not discarded") from None
    print(f"discarded {record['id']}")
    return 0


def _recount(args: argparse.Namespace, target: Target, records: Records) -> int:
    counts = records.recount()
    rows = sorted(
        [(subscription or "").rsplit("/", 1)[-1] or "-", kind, str(n)] for (subscription, kind), n in counts.items()
    )
    if rows:
        print(_table(["subscription", "kind", "waiting"], rows))
    print(f"counters set: {sum(counts.values())} records waiting")
    return 0


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    subscription = record.get("subscription") or ""
    return {
        "id": record["id"],
        "kind": record.get("kind", "permanent_failure"),
        "status": record.get("status"),
        "subscription": subscription.rsplit("/", 1)[-1] or None,
        "consumer": record.get("consumer"),
        "delivery_count": record.get("delivery_attempt"),
        "count": record.get("count"),
        "event_type": record.get("event_type"),
        "event_id": record.get("event_id"),
        "reason": record.get("reason"),
        "last_seen": record.get("last_seen"),
    }


def _since(text: str) -> datetime:
    relative = _RELATIVE.match(text.strip())
    if relative:
        return datetime.now(UTC) - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an RFC 3339 time or 30m / 2h / 7d, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [[h.upper() for h in headers], *rows]
    )
