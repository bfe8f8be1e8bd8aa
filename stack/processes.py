"""Start, probe and stop the stack's child processes.

Each process runs in its own session (so its own process group, whose id is its pid): Ctrl-C in the terminal
never reaches it directly, and stopping it signals the whole group, which matters because the Firestore
launcher is a bash script whose Java child would otherwise outlive it, and gunicorn forks workers.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from stack.errors import StackError

Probe = Callable[[], bool]

POLL_SECONDS = 0.1
STOP_GRACE_SECONDS = 10.0
KILL_WAIT_SECONDS = 5.0
LOG_TAIL_LINES = 25


def start_process(
    argv: Sequence[str],
    *,
    log_path: Path,
    cwd: Path,
    env: Mapping[str, str],
    append: bool = False,
    stdin: bytes | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session with stdout and stderr going to ``log_path``.

    The log is truncated first unless ``append`` (a restarted service keeps its predecessor's last words).
    ``stdin``: bytes the process reads from its standard input (then end of file), instead of nothing.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab" if append else "wb") as log:
        try:
            process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise StackError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
    if stdin is not None and process.stdin is not None:
        # A process that dies before reading it all is noticed by whoever waits for it to be ready.
        with contextlib.suppress(BrokenPipeError), process.stdin:
            process.stdin.write(stdin)
    return process


def wait_until_ready(
    process: subprocess.Popen[bytes],
    name: str,
    log_path: Path,
    ready: Probe,
    timeout: float,
    *,
    failed: Probe | None = None,
) -> None:
    """Poll ``ready`` until it holds; fail early if the process exits or ``failed`` holds, showing the log tail."""
    deadline = time.monotonic() + timeout
    while not ready():
        code = process.poll()
        if code is not None:
            raise StackError(f"{name} exited with code {code} before it was ready; {_tail_note(log_path)}")
        if failed is not None and failed():
            raise StackError(f"{name} failed to start; {_tail_note(log_path)}")
        if time.monotonic() > deadline:
            raise StackError(f"{name} was not ready after {timeout:.0f} s; {_tail_note(log_path)}")
        time.sleep(POLL_SECONDS)


def log_contains(log_path: Path, text: str) -> Probe:
    def probe() -> bool:
        try:
            return text in log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False

    return probe


def all_of(*probes: Probe) -> Probe:
    return lambda: all(probe() for probe in probes)


def tcp_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_answers(port: int, path: str = "/", host: str = "127.0.0.1") -> bool:
    """True once anything answers HTTP on the port, whatever the status (a function may 405 a bare GET)."""
    # http.client rather than urllib: it never goes through an HTTP(S)_PROXY from the environment.
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on the port now.

    SO_REUSEADDR, as servers set it, so leftover TIME_WAIT connections don't count as "taken".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def group_is_alive(pgid: int) -> bool:
    """Whether a non-zombie process remains in the group (the leader may be gone while its children live)."""
    members = _group_members(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_groups(pgids: Iterable[int], *, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM each process group, SIGKILL what is left after ``grace`` seconds, and wait until all are gone.

    All groups are signalled at once, so stopping a stack takes as long as its slowest process, not their sum.
    """
    signalled = [pgid for pgid in _signallable(pgids) if _signal_group(pgid, signal.SIGTERM)]
    for pgid in signalled:  # a group left paused (paused_groups, interrupted) acts on SIGTERM only once continued
        _signal_group(pgid, signal.SIGCONT)
    stubborn = _wait_groups_gone(signalled, grace)
    for pgid in stubborn:
        _signal_group(pgid, signal.SIGKILL)
    survivors = _wait_groups_gone(stubborn, KILL_WAIT_SECONDS)
    if survivors:
        groups = ", ".join(str(pgid) for pgid in survivors)
        raise StackError(f"process group(s) {groups} survived SIGKILL; check `ps -o pid,pgid,stat,args -g {groups}`")


@contextlib.contextmanager
def paused_groups(pgids: Iterable[int]) -> Iterator[None]:
    """SIGSTOP each process group for the duration of the block, SIGCONT it afterwards (also on error)."""
    paused = [pgid for pgid in _signallable(pgids) if _signal_group(pgid, signal.SIGSTOP)]
    try:
        yield
    finally:
        for pgid in paused:
            _signal_group(pgid, signal.SIGCONT)


def start_time(pid: int) -> float | None:
    """When the process started (epoch seconds, ~10 ms resolution), or None if unknown (gone, or no /proc)."""
    fields = _stat_fields(Path("/proc") / str(pid) / "stat")
    if len(fields) < 20:
        return None
    try:
        boot = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return None
    # Field 22 of /proc/<pid>/stat (index 19 after the command name): start time in clock ticks since boot.
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(log is empty)"


def _tail_note(log_path: Path) -> str:
    return f"last lines of {log_path}:\n{log_tail(log_path)}"


def _signallable(pgids: Iterable[int]) -> list[int]:
    # killpg(0) would hit the caller's own group and 1 is init's: a corrupt record must not take those down.
    return [pgid for pgid in pgids if pgid > 1 and pgid != os.getpgrp()]


def _signal_group(pgid: int, signum: signal.Signals) -> bool:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        _reap(pgid)
        return False
    return True


def _wait_groups_gone(pgids: list[int], timeout: float) -> list[int]:
    """Wait until the groups are empty; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        for pgid in pgids:
            _reap(pgid)  # the leader is our own child when a Stack object started it in this process
        alive = [pgid for pgid in pgids if group_is_alive(pgid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(POLL_SECONDS)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: whoever adopted it reaps it
        os.waitpid(pid, os.WNOHANG)


def _group_members(pgid: int) -> list[int] | None:
    """Live members of a process group from /proc, or None where there is no /proc (macOS)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry / "stat")
        # After the ")" that ends the command name: state, ppid, pgrp, ...
        if fields and fields[2] == str(pgid) and not _is_zombie(int(entry.name), fields):
            members.append(int(entry.name))
    return members


def _is_zombie(pid: int, fields: list[str] | None = None) -> bool:
    """A process that has finished exiting. State Z alone is not enough: when a multi-threaded process's main
    thread exits first (the JVM's does on SIGTERM), /proc shows Z while the other threads still hold sockets."""
    fields = _stat_fields(Path("/proc") / str(pid) / "stat") if fields is None else fields
    if not fields or fields[0] != "Z":
        return False
    try:
        return sum(1 for _ in (Path("/proc") / str(pid) / "task").iterdir()) <= 1
    except OSError:
        return True  # gone meanwhile


def _stat_fields(stat_path: Path) -> list[str]:
    try:
        text = stat_path.read_text()
    except OSError:
        return []
    return text[text.rfind(")") + 2 :].split()
