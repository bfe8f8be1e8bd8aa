"""Chaos: the shop's own services on a stack of their own, three instances of every order consumer, a burst of
orders over five products (one hot, its stock in shards), while a consumer instance is killed (SIGKILL) every few
seconds and the Pub/Sub and then the Firestore emulator stop for ~10 s each (SIGSTOP, then SIGCONT: an outage that
loses nothing they hold, as a Google service outage would).

Afterwards every order is CONFIRMED or CANCELLED, each product's available + reserved + sold is its initial stock
with nothing held and nothing oversold, no order is charged or mailed twice, and whatever reached a dead-letter topic
finishes once replayed. The figures are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from reliability_support import REPO, wait_for
from sent_mail import mailbox_of

from stack.ports import find_free_port_base
from stack.seed import stock_writes
from stack.topology import load_topology

ORDERS = 300
IN_FLIGHT = 12
CONSUMERS = ("inventory", "payments", "order-saga", "notifications")
INSTANCES = 3
KILL_EVERY_SECONDS = 2.0
MIN_KILLS = 8
OUTAGE_SECONDS = 10.0
PRODUCTS = {"CH-A": 40, "CH-B": 40, "CH-C": 40, "CH-D": 40}  # sku -> stock
HOT, HOT_STOCK, HOT_SHARDS = "CH-HOT", 60, 8
FINAL = ("CONFIRMED", "CANCELLED")
SETTLE_SECONDS = 180  # > the mail lease (2 min) plus a redelivery's backoff


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state_dir = tmp_path_factory.mktemp("chaos")
    port_base = find_free_port_base(len(load_topology().services) + len(CONSUMERS) * INSTANCES + 8)
    instances = ",".join(f"{name}={INSTANCES}" for name in CONSUMERS)
    up = _stack(state_dir, "up", "--detach", "--project", "chaos", "--port-base", str(port_base),
                "--instances", instances, "--restart-backoff", "0.5,4")  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield json.loads((state_dir / "stack.json").read_text()) | {"state_dir": str(state_dir)}
    finally:
        _stack(state_dir, "down")


def _stack(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "stack", *args, "--state-dir", str(state_dir)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def _record(stack: dict[str, Any]) -> dict[str, Any]:
    return json.loads((Path(stack["state_dir"]) / "stack.json").read_text())


def _seed(db: Any) -> None:
    products = [{"sku": sku, "available": stock} for sku, stock in PRODUCTS.items()]
    products.append({"sku": HOT, "available": HOT_STOCK, "stock_shards": HOT_SHARDS})
    for product in products:
        for path, fields in stock_writes({"name": product["sku"], "price": 1000, "currency": "EUR",
                                          "reserved": 0, "sold": 0, **product}):  # fmt: skip
            db.document(path).set(fields)


def _order_body(rng: random.Random) -> dict[str, Any]:
    sku = HOT if rng.random() < 0.4 else rng.choice(list(PRODUCTS))
    token = "tok_declined" if rng.random() < 0.1 else "tok_ok"
    return {
        "customer_id": f"cust-{rng.randrange(50)}",
        "email": "chaos@example.com",
        "items": [{"sku": sku, "quantity": rng.choice((1, 1, 2))}],
        "payment_token": token,
        "currency": "EUR",
    }


def _place(api: str, body: dict[str, Any]) -> str:
    """POST /orders until it is accepted, with one Idempotency-Key: a retry during an outage never orders twice."""
    key, deadline = uuid.uuid4().hex, time.monotonic() + 120
    while True:
        with contextlib.suppress(requests.RequestException):
            response = requests.post(f"{api}/orders", json=body, headers={"Idempotency-Key": key}, timeout=15)
            if response.status_code in (200, 201):
                return response.json()["order_id"]
            assert response.status_code in (500, 502, 503, 504), response.text  # anything else is a bug
        assert time.monotonic() < deadline, "the orders API did not accept an order within 120 s"
        time.sleep(0.5)


class Chaos:
    """Kills a random consumer instance every few seconds; stops Pub/Sub, then Firestore, for a while each."""

    def __init__(self, stack: dict[str, Any], rng: random.Random) -> None:
        self.stack, self.rng = stack, rng
        self.kills: Counter[str] = Counter()
        self.outages: list[str] = []
        self.missed = 0
        self.kill_times: list[float] = []  # seconds after the start of the burst
        self.started = time.monotonic()
        self.done = threading.Event()

    def run(self) -> None:
        """Kills every KILL_EVERY_SECONDS while orders are placed, and on while they are processed until both outages
        are over and at least MIN_KILLS instances have died."""
        outages = threading.Thread(target=self._outages, name="outages")
        outages.start()
        while outages.is_alive() or not (self.done.is_set() and sum(self.kills.values()) >= MIN_KILLS):
            time.sleep(KILL_EVERY_SECONDS)
            self._kill_one()
        outages.join()

    def _outages(self) -> None:
        """Pub/Sub at 5 s, Firestore at 20 s (from the start of the burst), whether or not it is still going."""
        started = time.monotonic()
        for at, emulator in ((5.0, "pubsub"), (20.0, "firestore")):
            time.sleep(max(0.0, at - (time.monotonic() - started)))
            self._outage(emulator)

    def _kill_one(self) -> None:
        name = self.rng.choice([f"{service}.{n}" for service in CONSUMERS for n in range(1, INSTANCES + 1)])
        try:
            os.killpg(_record(self.stack)["pids"][name], signal.SIGKILL)
        except (OSError, KeyError, ValueError):
            # Killed a moment ago and not started again yet (no pid, or a stale one, in the record): another next time.
            self.missed += 1
            return
        self.kills[name] += 1
        self.kill_times.append(round(time.monotonic() - self.started, 1))

    def _outage(self, emulator: str) -> None:
        group = _record(self.stack)["pids"][emulator]
        os.killpg(group, signal.SIGSTOP)
        try:
            time.sleep(OUTAGE_SECONDS)
        finally:
            os.killpg(group, signal.SIGCONT)
        self.outages.append(emulator)


def _statuses(api: str, order_ids: list[str]) -> dict[str, str]:
    return {order_id: requests.get(f"{api}/orders/{order_id}", timeout=15).json()["status"] for order_id in order_ids}


def _settled(api: str, order_ids: list[str], mailbox: Any) -> bool:
    if not set(_statuses(api, order_ids).values()) <= set(FINAL):
        return False
    return set(order_ids) <= {message["X-Order-Id"] for message in mailbox.messages()}


def _waiting(stack: dict[str, Any]) -> str:
    """What the dead-letter list says now: for a failure message."""
    command = [sys.executable, "-m", "dlq", "--state-dir", stack["state_dir"], "list"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    return f"dead letters: {result.stdout.strip()[-2000:] or result.stderr.strip()[-2000:]}"


def _replay_dead_letters(stack: dict[str, Any]) -> int:
    command = [sys.executable, "-m", "dlq", "--state-dir", stack["state_dir"], "replay", "--all"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return sum(1 for line in result.stdout.splitlines() if line.startswith("replayed"))


def _stock(db: Any, sku: str) -> tuple[int, int, int]:
    """(available, reserved, sold) over the product's document, or its shards."""
    if sku == HOT:
        docs = [db.document(f"products/{HOT}/stock_shards/{i}").get().to_dict() for i in range(HOT_SHARDS)]
    else:
        docs = [db.collection("products").document(sku).get().to_dict()]
    levels = [(d.get("available", 0), d.get("reserved", 0), d.get("sold", 0)) for d in docs]
    assert all(a >= 0 and r >= 0 for a, r, _ in levels), (sku, levels)  # no shard or product below zero
    return sum(a for a, _, _ in levels), sum(r for _, r, _ in levels), sum(s for _, _, s in levels)


def test_orders_survive_killed_instances_and_emulator_outages_exactly_once(
    chaos_stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", chaos_stack["emulators"]["firestore"])
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", chaos_stack["project"])
    from google.cloud import firestore

    db = firestore.Client(project=chaos_stack["project"])
    _seed(db)
    api, rng = chaos_stack["services"]["orders"], random.Random(7)
    bodies = [_order_body(rng) for _ in range(ORDERS)]
    chaos = Chaos(chaos_stack, random.Random(11))
    chaos_thread = threading.Thread(target=chaos.run, name="chaos")

    started = time.monotonic()
    chaos_thread.start()
    try:
        with ThreadPoolExecutor(IN_FLIGHT) as clients:
            order_ids = list(clients.map(lambda body: _place(api, body), bodies))
        placed_seconds = time.monotonic() - started
    finally:
        chaos.done.set()
        chaos_thread.join()

    # Every order ends and is mailed. A delivery can exhaust its attempts during the chaos (an outage, or a killed
    # instance's 2-minute mail lease outliving the subscription's backoff): it waits as a dead letter, and is replayed.
    mailbox = mailbox_of(_record(chaos_stack))
    replayed = 0
    for _ in range(3):
        with contextlib.suppress(AssertionError):
            wait_for(lambda: _settled(api, order_ids, mailbox), SETTLE_SECONDS, "every order final and mailed")
            break
        replayed += _replay_dead_letters(chaos_stack)
    statuses = _statuses(api, order_ids)
    final_seconds = time.monotonic() - started

    assert len(set(order_ids)) == ORDERS  # every request made one order, retries included
    assert set(statuses.values()) <= set(FINAL), Counter(statuses.values())
    # Stock: nothing held, nothing oversold, nothing lost.
    confirmed = Counter()
    for body, order_id in zip(bodies, order_ids, strict=True):
        if statuses[order_id] == "CONFIRMED":
            confirmed[body["items"][0]["sku"]] += body["items"][0]["quantity"]
    for sku, initial in {**PRODUCTS, HOT: HOT_STOCK}.items():
        wait_for(lambda sku=sku: _stock(db, sku)[1] == 0, 60, f"{sku}: nothing left reserved")
        available, reserved, sold = _stock(db, sku)
        assert (available + reserved + sold, sold) == (initial, confirmed[sku]), sku
    # Payments: one approved charge per confirmed order, never two for one order.
    charges = Counter(
        doc.get("order_id") for doc in db.collection("gateway_charges").stream()
        if doc.get("kind") == "charge" and doc.get("status") == "approved"
    )  # fmt: skip
    assert max(charges.values(), default=0) == 1
    assert {o for o, s in statuses.items() if s == "CONFIRMED"} <= set(charges)
    # Mail: one per order, whichever way it ended.
    mailed = Counter(message["X-Order-Id"] for message in mailbox.messages())
    assert set(mailed) == set(order_ids), (
        f"{len(set(order_ids) - set(mailed))} orders not mailed; {_waiting(chaos_stack)}"
    )
    assert max(mailed.values()) == 1, [order for order, count in mailed.items() if count > 1]

    restarts = _stack(Path(chaos_stack["state_dir"]), "status").stdout
    killed = (
        f"{sum(chaos.kills.values())} instances killed at {chaos.kill_times} s ({dict(chaos.kills)}; "
        f"{chaos.missed} already down)"
    )
    print(
        f"\nchaos: {ORDERS} orders ({dict(Counter(statuses.values()))}) placed in {placed_seconds:.1f} s, "
        f"all final and mailed after {final_seconds:.1f} s; {killed}; outages {chaos.outages}; "
        f"dead letters replayed {replayed}; duplicate charges 0, duplicate mails 0, lost 0\n{restarts}"
    )
    assert chaos.outages == ["pubsub", "firestore"] and sum(chaos.kills.values()) >= MIN_KILLS
