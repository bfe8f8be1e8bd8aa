"""The notifications service's handlers in this process, sending through a real SMTP server (aiosmtpd, in this
process) and keeping its lease and sent records in the Firestore emulator."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from email.message import Message
from types import ModuleType
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from push_request import push_request

from eventkit.catalog import CATALOG, ORDER_CANCELLED, ORDER_CONFIRMED
from eventkit.events import DomainEvent, encode_for_pubsub, new_event


class Inbox:
    """An aiosmtpd handler that keeps what it receives; ``refuse`` makes the next N messages get a 451."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self.refuse:
                self.refuse -= 1
                return "451 4.3.0 try again later"
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-connection INFO lines are noise here
    handler, port = Inbox(), _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def notifications(
    clean_stack: dict[str, Any], inbox: tuple[Inbox, int], service_main: Callable[..., ModuleType]
) -> ModuleType:
    return service_main(
        "notifications",
        K_SERVICE="notifications",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(inbox[1]),
        MAIL_FROM="orders@shop.example",
    )


def _push(service: ModuleType, event: DomainEvent) -> tuple[int, dict[str, Any]]:
    data, attributes = encode_for_pubsub(event)
    body = {
        "message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": uuid.uuid4().hex},
        "subscription": "projects/shop-test/subscriptions/notifications-order-events",
    }
    with push_request(body) as request:
        text, status, _ = service.handle_event(request)
    return status, json.loads(text)


def _confirmed(order_id: str, email: str | None = "ana@example.com") -> DomainEvent:
    data = {"order_id": order_id, "customer_id": "c-1", "total": 2400, "currency": "EUR", "email": email}
    return new_event(CATALOG, ORDER_CONFIRMED, {k: v for k, v in data.items() if v is not None}, source="//tests")


def _sent(db: Any) -> list[dict[str, Any]]:
    return [doc.to_dict() for doc in db.collection("sent_mail").stream()]


def test_confirmed_order_is_mailed_with_a_message_id_from_the_event_id(
    notifications: ModuleType, inbox: tuple[Inbox, int], db: Any
) -> None:
    event = _confirmed("o-1")

    status, body = _push(notifications, event)

    assert (status, body["status"]) == (200, "processed")
    (mail,) = inbox[0].messages
    assert mail["To"] == "ana@example.com"
    assert mail["From"] == "orders@shop.example"
    assert mail["Subject"] == "Your order o-1 is confirmed"
    assert mail["Message-ID"].startswith(f"<{event.id}.") and mail["Message-ID"].endswith("@shop.example>")
    (record,) = _sent(db)
    assert (record["message_id"], record["sender"], record["order_id"]) == (mail["Message-ID"], "smtp", "o-1")


def test_cancelled_order_mail_says_why(notifications: ModuleType, inbox: tuple[Inbox, int]) -> None:
    data = {"order_id": "o-2", "customer_id": "c", "total": 100, "currency": "EUR", "email": "bo@example.com"}
    event = new_event(CATALOG, ORDER_CANCELLED, {**data, "reason": "declined"}, source="//tests")

    assert _push(notifications, event)[0] == 200

    (mail,) = inbox[0].messages
    assert mail["Subject"] == "Your order o-2 was cancelled"
    assert "the payment was declined" in mail.get_payload()


def test_event_pushed_ten_times_in_a_row_and_at_once_sends_one_mail_each(
    notifications: ModuleType, inbox: tuple[Inbox, int], db: Any
) -> None:
    in_a_row, at_once = _confirmed("o-3"), _confirmed("o-4")

    sequential = [_push(notifications, in_a_row)[0] for _ in range(10)]
    with ThreadPoolExecutor(10) as pool:
        concurrent = list(pool.map(lambda _: _push(notifications, at_once)[0], range(10)))

    assert sequential == [200] * 10
    assert set(concurrent) <= {200, 503}  # a duplicate meeting a held lease is told to come back later
    assert sorted(m["X-Order-Id"] for m in inbox[0].messages) == ["o-3", "o-4"]
    assert len(_sent(db)) == 2


def test_smtp_refusing_for_now_is_retried_and_then_sends_once(
    notifications: ModuleType, inbox: tuple[Inbox, int], db: Any
) -> None:
    inbox[0].refuse = 1
    event = _confirmed("o-5")

    first, retried, duplicate = (_push(notifications, event) for _ in range(3))

    assert (first[0], first[1]["status"]) == (503, "retry")
    assert retried[0] == 200 and duplicate[0] == 200
    assert len(inbox[0].messages) == 1
    assert len(_sent(db)) == 1


def test_event_without_email_is_acknowledged_and_sends_nothing(
    notifications: ModuleType, inbox: tuple[Inbox, int], db: Any
) -> None:
    status, _ = _push(notifications, _confirmed("o-6", email=None))

    assert status == 200
    assert inbox[0].messages == []
    assert _sent(db) == []


def test_unreachable_smtp_server_is_retried_not_lost(
    clean_stack: dict[str, Any], service_main: Callable[..., ModuleType], db: Any
) -> None:
    service = service_main(
        "notifications", K_SERVICE="notifications", SMTP_HOST="127.0.0.1", SMTP_PORT=str(_free_port())
    )

    status, body = _push(service, _confirmed("o-7"))

    assert (status, body["status"]) == (503, "retry")
    assert _sent(db) == []
    assert [doc.id for doc in db.collection("idempotency").stream()] == []  # the lease was given back


def test_without_smtp_host_the_mail_goes_to_the_log(
    clean_stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch, service_main: Callable[..., ModuleType], db: Any
) -> None:
    monkeypatch.delenv("SMTP_HOST", raising=False)
    service = service_main("notifications", K_SERVICE="notifications")

    status, _ = _push(service, _confirmed("o-8"))

    assert status == 200
    (record,) = _sent(db)
    assert record["sender"] == "log"
