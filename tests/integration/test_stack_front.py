"""stack/front.py with real HTTP servers behind it: requests spread in turn, a dead instance skipped, none → 503."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from stack.front import Front, addresses, parse_upstream


class Echo(BaseHTTPRequestHandler):
    """Answers with its own port, the request's path, body and one header: what the front must pass on whole."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = f"{self.server.server_port} {self.path} {self.headers.get('ce-type')} ".encode() + body
        self.send_response(201)
        self.send_header("X-Instance", str(self.server.server_port))
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _serving(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def instances() -> Iterator[list[ThreadingHTTPServer]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(_serving(ThreadingHTTPServer(("127.0.0.1", 0), Echo))) for _ in range(3)]


def _front(ports: list[int]) -> contextlib.AbstractContextManager[ThreadingHTTPServer]:
    return _serving(Front("inventory", 0, [("127.0.0.1", port) for port in ports]))


def test_requests_go_to_each_instance_in_turn_passed_on_whole(instances: list[ThreadingHTTPServer]) -> None:
    ports = [server.server_port for server in instances]
    with _front(ports) as front, requests.Session() as session:  # one kept-alive connection, as Pub/Sub keeps
        url = f"http://127.0.0.1:{front.server_port}/push?x=1"
        answers = [session.post(url, data=b"payload", headers={"ce-type": "t.v1"}, timeout=10) for _ in range(9)]
    assert {answer.status_code for answer in answers} == {201}
    assert [answer.text for answer in answers[:3]] == [f"{port} /push?x=1 t.v1 payload" for port in ports]
    assert Counter(int(answer.headers["X-Instance"]) for answer in answers) == dict.fromkeys(ports, 3)


def test_an_instance_that_is_down_is_skipped(instances: list[ThreadingHTTPServer]) -> None:
    ports = [server.server_port for server in instances]
    instances[1].shutdown()
    instances[1].server_close()  # refuses connections now, as a crashed instance's port does
    with _front(ports) as front:
        answers = [requests.post(f"http://127.0.0.1:{front.server_port}/", data=b"x", timeout=10) for _ in range(6)]
    assert {answer.status_code for answer in answers} == {201}
    # The dead one's turns go to the instance after it; every request is answered by a live one.
    assert {int(answer.headers["X-Instance"]) for answer in answers} == {ports[0], ports[2]}


def test_no_instance_up_is_a_503_pubsub_retries(instances: list[ThreadingHTTPServer]) -> None:
    ports = [server.server_port for server in instances]
    for server in instances:
        server.shutdown()
        server.server_close()
    with _front(ports) as front:
        answer = requests.post(f"http://127.0.0.1:{front.server_port}/", data=b"x", timeout=10)
    assert (answer.status_code, answer.text) == (503, "no instance of inventory is up\n")


def test_an_upstream_by_name_is_resolved_at_every_request(instances: list[ThreadingHTTPServer]) -> None:
    """Under compose the upstream is a name Docker's DNS answers with every replica's address (the container test
    shows that); here `localhost`, and a name that resolves to nothing, as a service with no replica up."""
    port = instances[0].server_port
    assert parse_upstream(str(port)) == ("127.0.0.1", port)
    assert parse_upstream(f"inventory-instance:{port}") == ("inventory-instance", port)
    assert addresses([("localhost", port), ("no-such-host.invalid", port)]) == [("127.0.0.1", port)]
    with _serving(Front("inventory", 0, [("localhost", port)])) as front:
        answer = requests.post(f"http://127.0.0.1:{front.server_port}/", data=b"x", timeout=10)
    assert (answer.status_code, int(answer.headers["X-Instance"])) == (201, port)
