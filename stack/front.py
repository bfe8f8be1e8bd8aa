"""Cloud Run's frontend, locally: one address per service, each request sent to the next of its instances.

``python -m stack.front --name inventory --port 8097 --upstream 18111 --upstream 18112 ...`` listens on the
service's own port (the one its push subscriptions and stack.json name) and forwards every request, whole, to the
instances in turn (round robin), so Pub/Sub push deliveries spread across them as they do across Cloud Run
instances. Only the local stack starts it, and only for a service that runs more than one instance.

An instance that refuses the connection (crashed, or being restarted by the supervisor) is skipped for the next
one, as Cloud Run routes only to live instances. A request that reached an instance is never sent to another:
the instance may have acted on it. When no instance takes the connection, the answer is 503, which Pub/Sub retries.

Under docker compose (stack/compose_instances.py) it runs as a container of its own: ``--host 0.0.0.0 --upstream
inventory-instance:8080``, a name Docker's DNS answers with the address of every replica. The name is resolved
again for every request, so a replaced container's new address is used and a stopped one's is not.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import itertools
import socket
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Generic, TypeVar

READY_LINE = "front: listening"
UPSTREAM_TIMEOUT_SECONDS = 3600.0  # Cloud Run's longest request timeout; the instance bounds its own work
CONNECT_TIMEOUT_SECONDS = 2.0  # an address nobody answers (a container just gone) must not hold the request
LOCALHOST = "127.0.0.1"
T = TypeVar("T")
# Headers about one connection, not the request (RFC 9110 7.6.1): never forwarded.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)


class RoundRobin(Generic[T]):
    """Turns handed out across threads: each call starts one further along the list."""

    def __init__(self, items: Sequence[T] = ()) -> None:
        self.items = list(items)
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def order(self, items: Sequence[T] | None = None) -> list[T]:
        """Every item (``items``, or the ones given at construction), starting with the next one's turn: try them
        in this order."""
        items = list(self.items if items is None else items)
        if not items:
            return []
        with self._lock:
            first = next(self._turn) % len(items)
        return items[first:] + items[:first]


def parse_upstream(text: str) -> tuple[str, int]:
    """``18111`` (a port on this machine) or ``HOST:PORT`` → (host, port)."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected PORT or HOST:PORT, got {text!r}")
    return host or LOCALHOST, int(port)


def addresses(upstreams: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Every address the upstreams stand for now: an IP as it is, a name as every address it resolves to (sorted,
    so the turns go round them in a stable order). A name that resolves to nothing (no replica up) gives none."""
    found: list[tuple[str, int]] = []
    for host, port in upstreams:
        try:
            ipaddress.ip_address(host)
            found.append((host, port))
            continue
        except ValueError:
            pass
        try:
            resolved = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror:
            continue
        found += sorted({(str(info[4][0]), port) for info in resolved})
    return found


class FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for the Pub/Sub emulator's connections
    server: Front

    def _forward(self) -> None:
        body = self._body()
        if body is None:
            return
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        for host, port in self.server.turns.order(addresses(self.server.upstreams)):
            connection = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT_SECONDS)
            try:
                connection.connect()
                connection.sock.settimeout(UPSTREAM_TIMEOUT_SECONDS)
            except OSError:
                connection.close()
                continue  # not taking connections: the next instance
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                self._answer(response.status, response.getheaders(), response.read())
            except (OSError, http.client.HTTPException) as exc:
                self._answer(502, [], f"instance at {host}:{port} failed mid-request: {exc}\n".encode())
            finally:
                connection.close()
            return
        self._answer(503, [("Retry-After", "1")], f"no instance of {self.server.service} is up\n".encode())

    def _body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._answer(411, [], b"send a Content-Length\n")  # no local client chunks its requests
            return None
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass  # each instance logs its own requests; one line per forward here would double the log volume


class Front(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of pushes must not meet a full accept queue

    def __init__(self, service: str, port: int, upstreams: Sequence[tuple[str, int]], *, host: str = LOCALHOST) -> None:
        self.service = service
        self.upstreams = list(upstreams)
        self.turns: RoundRobin[tuple[str, int]] = RoundRobin()
        super().__init__((host, port), FrontHandler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.front", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the service, for messages")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default=LOCALHOST, help="the address to listen on (default: %(default)s)")
    parser.add_argument("--upstream", type=parse_upstream, action="append", required=True, metavar="PORT|HOST:PORT")
    args = parser.parse_args(argv)
    front = Front(args.name, args.port, args.upstream, host=args.host)
    where = ", ".join(f"{host}:{port}" for host, port in args.upstream)
    print(f"{READY_LINE} for {args.name} on {args.host}:{args.port}; instances at {where}", flush=True)
    front.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
