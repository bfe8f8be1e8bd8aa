"""Helpers of the reliability suite: consumers behind real HTTP servers, test topics, bounded waits, a TCP proxy.

Everything listens on 127.0.0.1 only. Every wait has a deadline and names what it waited for.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask
import requests
from google.cloud import pubsub_v1
from werkzeug.serving import make_server

from eventkit import Consumer

REPO = Path(__file__).resolve().parents[2]
CONSUMER_PROCESS = Path(__file__).with_name("consumer_process.py")


def wait_for(condition: Callable[[], bool], seconds: float, what: str, poll: float = 0.2) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll)
    raise AssertionError(f"not within {seconds:.0f} s: {what}")


def wait_until_wipeable(stack: dict[str, Any], seconds: float = 90) -> None:
    """Wipe Firestore, waiting out what a SIGKILLed client left behind.

    The emulator keeps the locks of a transaction whose client was killed until the transaction expires, and
    refuses a wipe (409) meanwhile; the next test's wipe must not inherit that.
    """
    url = f"http://{stack['emulators']['firestore']}/emulator/v1/projects/{stack['project']}/databases/(default)/documents"
    wait_for(lambda: requests.delete(url, timeout=10).status_code == 200, seconds, "Firestore accepting a wipe")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServedConsumer:
    """An eventkit Consumer in this process behind a threaded HTTP server; counts pushes (also per Pub/Sub message
    id, in ``messages``) and answers, and keeps the ids of the messages it acknowledged (``acknowledged``).

    ``host``: the address to listen on, where the stack's Pub/Sub emulator can reach it (conftest's callback_host).
    """

    def __init__(self, consumer: Consumer, host: str = "127.0.0.1") -> None:
        self.consumer = consumer
        self.pushes = 0
        self.messages: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.acknowledged: set[str] = set()
        self._lock = threading.Lock()
        app = flask.Flask(f"reliability-{consumer.name}")
        app.add_url_rule("/", "handle", self._handle, methods=["POST"])
        self.server = make_server(host, 0, app, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self) -> Any:
        envelope = flask.request.get_json(silent=True)  # the body stays cached for the consumer
        message = envelope.get("message") if isinstance(envelope, dict) else None
        message_id = message.get("messageId") or message.get("message_id") if isinstance(message, dict) else None
        with self._lock:
            self.pushes += 1
            self.messages[str(message_id)] += 1
        body, status, headers = self.consumer.handle(flask.request)
        with self._lock:
            self.statuses[status] += 1
            if status < 300:  # Pub/Sub pushes this message no more
                self.acknowledged.add(str(message_id))
        return body, status, headers

    def close(self) -> None:
        self.server.shutdown()


@contextlib.contextmanager
def served(consumer: Consumer, host: str = "127.0.0.1") -> Iterator[ServedConsumer]:
    server = ServedConsumer(consumer, host)
    try:
        yield server
    finally:
        server.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(project: str, name: str) -> str:
    return pubsub_v1.PublisherClient().create_topic(name=f"projects/{project}/topics/{name}").name


def create_push_subscription(
    project: str,
    topic: str,
    name: str,
    endpoint: str,
    *,
    dead_letter_topic: str | None = None,
    max_delivery_attempts: int = 5,
    backoff: tuple[int, int] = (1, 2),
    ack_deadline: int = 10,
) -> str:
    request: dict[str, Any] = {
        "name": f"projects/{project}/subscriptions/{name}",
        "topic": topic,
        "push_config": {"push_endpoint": endpoint},
        "ack_deadline_seconds": ack_deadline,
        "retry_policy": {"minimum_backoff": {"seconds": backoff[0]}, "maximum_backoff": {"seconds": backoff[1]}},
    }
    if dead_letter_topic is not None:
        request["dead_letter_policy"] = {
            "dead_letter_topic": dead_letter_topic,
            "max_delivery_attempts": max_delivery_attempts,
        }
    return pubsub_v1.SubscriberClient().create_subscription(request=request).name


def delete_subscription(path: str) -> None:
    with contextlib.suppress(Exception):
        pubsub_v1.SubscriberClient().delete_subscription(request={"subscription": path})


def run_dlq(state_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m dlq --state-dir <stack> ...`` as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}  # stack.json says where
    return subprocess.run(
        [sys.executable, "-m", "dlq", "--state-dir", str(state_dir), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def dlq_list(state_dir: Path, *args: str) -> list[dict[str, Any]]:
    result = run_dlq(state_dir, "list", "--json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


class ConsumerProcess:
    """tests/reliability/consumer_process.py as a child process in its own process group."""

    def __init__(self, stack: dict[str, Any], name: str, port: int, log: Path) -> None:
        self.stack, self.name, self.port, self.log = stack, name, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, *, hang: str = "never", concurrency: int = 16) -> None:
        env = {
            **os.environ,
            "GOOGLE_CLOUD_PROJECT": self.stack["project"],
            "FIRESTORE_EMULATOR_HOST": self.stack["emulators"]["firestore"],
            "PUBSUB_EMULATOR_HOST": self.stack["emulators"]["pubsub"],
            "PYTHONUNBUFFERED": "1",
        }
        argv = [sys.executable, str(CONSUMER_PROCESS), "--name", self.name, "--port", str(self.port)]
        argv += ["--hang", hang, "--concurrency", str(concurrency)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._ready, 30, f"{self.name} answering on port {self.port} (log: {self.log})")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}; log: {self.log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True
        return False

    def kill(self) -> None:
        """SIGKILL the whole process group, as an OOM kill or a crashed instance would end it."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, 9)
        self.process.wait(timeout=10)


class TcpProxy:
    """A loopback TCP proxy whose ``cut()`` drops every connection and refuses new ones until ``resume()``.

    Clients behind it see the server vanish mid-call, as during an outage, while the test still reaches the
    server directly (to export its data before restarting it).
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = threading.Event()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def resume(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
