"""``python -m stack up|down|status|restart``: the local stack on the command line.

Expected failures (a taken port, a missing emulator, a bad topology) print one ``stack: error: ...`` line
(plus a log tail when a process failed to start) and exit 1, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from stack import state
from stack.errors import StackError
from stack.instances import parse_instances
from stack.ports import DEFAULT_PORT_BASE
from stack.processes import group_is_alive
from stack.runner import DEFAULT_PROJECT, DEFAULT_STATE_DIR, ProcessStatus, Stack
from stack.state import StackInfo, process_kind
from stack.supervisor import RestartPolicy

WATCH_INTERVAL_SECONDS = 1.0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except StackError as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stack", description="The local stack without Docker.")
    commands = parser.add_subparsers(required=True, metavar="{up,down,status,restart,demo,simulate,exec}")

    up = commands.add_parser("up", help="start emulators, bootstrap and services")
    up.add_argument("--detach", action="store_true", help="return once ready and leave the stack running")
    up.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE, metavar="N", help="default: %(default)s")
    up.add_argument("--project", default=DEFAULT_PROJECT, help="default: %(default)s")
    up.add_argument("--topology", type=Path, default=None, help="default: topology.yaml at the repository root")
    up.add_argument(
        "--restart-backoff",
        type=_backoff,
        default=RestartPolicy(),
        metavar="FIRST,MAX",
        help="seconds a crashed service waits before its restart: FIRST, doubling per crash in a row up to MAX "
        "(default: %(default)s)",
    )
    up.add_argument(
        "--instances",
        action="append",
        default=[],
        metavar="SERVICE=N[,...]",
        help="run N instances of SERVICE behind one front that spreads requests across them (default: 1 each)",
    )
    up.set_defaults(command=_up)

    down = commands.add_parser("down", help="stop the recorded processes")
    down.set_defaults(command=_down)

    status = commands.add_parser("status", help="show whether each recorded process is alive and answering")
    status.set_defaults(command=_status)

    restart = commands.add_parser("restart", help="restart one service now (the supervisor stops and starts it)")
    restart.add_argument("name", help="a service of the running stack (all its instances, in turn), or SERVICE.N")
    restart.set_defaults(command=_restart)

    demo = commands.add_parser("demo", help="place three orders and follow each to CONFIRMED or CANCELLED")
    demo.set_defaults(command=_demo)

    simulate = commands.add_parser("simulate", help="unreliable IoT devices posting readings to telemetry-ingest")
    _simulate_arguments(simulate)
    simulate.set_defaults(command=_simulate)

    run = commands.add_parser("exec", help="run a command in a service's environment (e.g. images.backfill)")
    run.add_argument("service", help="a service of the running stack, e.g. images")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="what to run, after --")
    run.set_defaults(command=_exec)

    for sub in (up, down, status, restart, demo, simulate, run):
        sub.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: %(default)s")
    return parser


def _backoff(text: str) -> RestartPolicy:
    try:
        first, most = (float(part) for part in text.split(","))
        return RestartPolicy(first, most)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST,MAX in seconds (e.g. 1,30), got {text!r}") from None
    except StackError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _up(args: argparse.Namespace) -> int:
    stack = Stack(
        args.state_dir,
        args.port_base,
        args.project,
        topology_path=args.topology,
        restart_policy=args.restart_backoff,
        instances=parse_instances(args.instances),
    )
    # Ctrl-C (and a SIGTERM, exactly like it) stops the stack. Installed here rather than left to Python's default,
    # which a process started with SIGINT ignored never gets (a script's `make up &` without job control): that
    # stack would only ever stop by `down`.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    try:
        info = stack.up()
    except KeyboardInterrupt:
        print("stack: interrupted; stopped what had been started", file=sys.stderr)
        return 130
    print(_table(["NAME", "KIND", "ADDRESS", "PID", "LOG"], _up_rows(info)))
    print(f"ready in {stack.started_in_seconds or 0:.1f} s; record in {stack.state_dir / 'stack.json'}")
    if args.detach:
        print(f"stop it with: python -m stack down --state-dir {stack.state_dir}")
        return 0
    print("running in the foreground; Ctrl-C stops everything")
    try:
        _watch(info, stack)
    except KeyboardInterrupt:
        pass
    finally:
        with _signals_ignored():  # a second Ctrl-C must not cut the shutdown short
            stack.down()
    print("stopped")
    return 0


def _down(args: argparse.Namespace) -> int:
    stack = Stack(args.state_dir)
    without_record = state.read_info(stack.state_dir) is None
    stopped = stack.down()
    if not stopped:
        print(f"no stack recorded in {stack.state_dir}; nothing to stop")
        return 0
    if without_record:
        print(
            f"{stack.state_dir / state.STACK_FILE} is missing or unreadable; found the processes by their records "
            f"in {stack.state_dir / 'processes'}"
        )
    print("stopped: " + ", ".join(f"{name} (pid {pid})" for name, pid in stopped.items()))
    return 0


def _status(args: argparse.Namespace) -> int:
    statuses = Stack(args.state_dir).status()
    headers = ["NAME", "KIND", "PID", "PROCESS", "PORT", "RESTARTS", "LAST EXIT", "ADDRESS", "LOG"]
    print(_table(headers, [_status_row(s) for s in statuses]))
    return 0 if all(s.alive and s.answering for s in statuses) else 1


def _restart(args: argparse.Namespace) -> int:
    for name, old, new in Stack(args.state_dir).restart_service(args.name):
        print(f"restarted {name}: pid {old} → {new}, answering", flush=True)
    return 0


def _exec(args: argparse.Namespace) -> int:
    from stack.service_exec import run_in_service_env

    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    return run_in_service_env(args.state_dir, args.service, argv)


def _demo(args: argparse.Namespace) -> int:
    from stack.demo import run_demo

    return run_demo(args.state_dir)


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=10, help="default: %(default)s")
    parser.add_argument("--readings", type=int, default=1000, help="unique readings in all; default: %(default)s")
    parser.add_argument("--batch", type=int, default=50, help="readings per request; default: %(default)s")
    parser.add_argument("--rate", type=float, default=0.0, help="readings/s in all; 0 = as fast as answered")
    parser.add_argument("--duplicates", type=float, default=0.1, help="share re-sent later; default: %(default)s")
    parser.add_argument("--shuffle", type=float, default=0.1, help="share sent out of order; default: %(default)s")
    parser.add_argument("--spikes", type=float, default=0.01, help="share of spikes; default: %(default)s")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight; default: %(default)s")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--wait", action="store_true", help="follow the readings into Firestore; print readings/s")


def _simulate(args: argparse.Namespace) -> int:
    from stack.simulate import Plan, run_simulation

    plan = Plan(
        devices=args.devices,
        readings=args.readings,
        batch=args.batch,
        duplicates=args.duplicates,
        shuffle=args.shuffle,
        spikes=args.spikes,
        rate=args.rate,
        seed=args.seed,
    )
    run_simulation(args.state_dir, plan, concurrency=args.concurrency, wait=args.wait)
    return 0


def _watch(info: StackInfo, stack: Stack) -> None:
    """Stay in the foreground and relay what the supervisor logs (each crash and restart of a service); say once
    when an emulator or helper dies (those are not restarted, as compose would not either)."""
    reported: set[str] = set()
    supervisor_log = info.log_file("supervisor")
    relayed = 0
    while True:
        time.sleep(WATCH_INTERVAL_SECONDS)
        relayed = _relay_new_lines(supervisor_log, relayed)
        pids = state.recorded_pids(stack.state_dir)
        if not pids:
            print("stack: stopped by `python -m stack down`", file=sys.stderr)
            return
        for name, pid in pids.items():
            if process_kind(name) in ("emulator", "helper") and name not in reported and not group_is_alive(pid):
                reported.add(name)
                print(f"stack: {name} (pid {pid}) exited; see {info.log_file(name)}", file=sys.stderr)


def _relay_new_lines(log: Path, offset: int) -> int:
    """Print what ``log`` gained since ``offset`` (whole lines only), prefixed "stack: "; return the new offset."""
    try:
        with log.open("rb") as file:
            file.seek(offset)
            chunk = file.read()
    except OSError:
        return offset
    complete = chunk[: chunk.rfind(b"\n") + 1]
    for line in complete.decode("utf-8", errors="replace").splitlines():
        print(f"stack: {line}", file=sys.stderr)
    return offset + len(complete)


def _up_rows(info: StackInfo) -> list[list[str]]:
    return [
        [
            name,
            process_kind(name),
            info.address(name) or "(calls out only)",
            str(pid),
            str(info.log_file(name)),
        ]
        for name, pid in info.pids.items()
    ]


def _status_row(status: ProcessStatus) -> list[str]:
    if status.alive:
        process = "alive"
    elif status.restart_in is not None:
        process = f"restarting in {status.restart_in:.1f} s"
    else:
        process = "dead"
    return [
        status.name,
        status.kind,
        str(status.pid),
        process,
        "answers" if status.answering else "silent",
        "-" if status.restarts is None else str(status.restarts),
        status.last_exit or "-",
        status.address or "(starting)",
        str(status.log),
    ]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
