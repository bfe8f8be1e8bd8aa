"""Several instances of a service under docker compose: inventory as three containers behind its front.

A compose project of its own (shop-instances-<pid>, its own host ports) from the same images, with the override
stack/compose_instances.py writes for ``inventory=3``. Orders placed through the orders API reach inventory through
the Pub/Sub emulator's pushes to ``http://inventory:8080/`` (the front), and every order must still complete once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from waiting import wait_for

from stack.compose import ComposeStack, docker, require_engine

REPO = Path(__file__).resolve().parents[2]
INSTANCES = 3
ORDERS = 12
STOCK = 100
FINAL = ("CONFIRMED", "CANCELLED")
# The module's first test also waits for the images' build (minutes when nothing is cached) and a whole stack's start.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def scaled() -> Iterator[ComposeStack]:
    require_engine()
    # Not compose-<...>: the session's compose fixture removes those of finished runs, this one's logs included.
    state_dir = REPO / ".local" / "test-stacks" / f"scaled-compose-{os.getpid()}"
    for earlier in state_dir.parent.glob("scaled-compose-*"):  # an earlier run's logs
        shutil.rmtree(earlier, ignore_errors=True)
    stack = ComposeStack(state_dir, project=f"shop-instances-{os.getpid()}", instances={"inventory": INSTANCES})
    stack.build()  # the images of this checkout (layers cached from the session's build)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()  # keeps the containers' logs in state_dir/logs, until the next run of this module


@pytest.fixture
def info(scaled: ComposeStack, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    record = json.loads((scaled.state_dir / "stack.json").read_text())
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", record["emulators"]["firestore"])
    return record


def _processed(container: str, event_type: str) -> list[str]:
    """The event ids of ``event_type`` deliveries one container processed, from its own log."""
    lines = docker("logs", container, check=False).splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [e["event_id"] for e in entries if e.get("message") == "processed" and e.get("event_type") == event_type]


def test_inventory_runs_as_three_containers_behind_its_own_address(scaled: ComposeStack, info: dict) -> None:
    containers = scaled.instance_containers("inventory")
    assert len(containers) == INSTANCES
    assert scaled.published("inventory", 8080) in info["services"]["inventory"]  # the front, on the service's port
    assert requests.get(f"{info['services']['inventory']}/ready", timeout=10).status_code == 200
    front = scaled.logs("inventory")
    assert "front: listening for inventory on 0.0.0.0:8080; instances at inventory-instance:8080" in front


def _sell(info: dict[str, Any], orders: int) -> tuple[Counter[str], dict[str, Any]]:
    """``orders`` orders of one unit of a new product, placed 4 at a time through the orders API; once every one is
    final: their statuses counted, and the product's stock once no reservation is left open."""
    from google.cloud import firestore

    sku = f"SCALED-{uuid.uuid4().hex[:8]}"
    db = firestore.Client(project=info["project"])
    db.collection("products").document(sku).set(
        {"name": sku, "price": 500, "currency": "EUR", "available": STOCK, "reserved": 0}
    )
    body = {"customer_id": "c-1", "email": "ana@example.com", "items": [{"sku": sku, "quantity": 1}],
            "payment_token": "tok_ok", "currency": "EUR"}  # fmt: skip
    orders_api = info["services"]["orders"]

    def place(_: int) -> str:
        response = requests.post(f"{orders_api}/orders", json=body, timeout=60)
        assert response.status_code == 201, response.text
        return response.json()["order_id"]

    with ThreadPoolExecutor(4) as pool:
        order_ids = list(pool.map(place, range(orders)))

    def all_final() -> dict[str, str] | None:
        found = {oid: requests.get(f"{orders_api}/orders/{oid}", timeout=10).json()["status"] for oid in order_ids}
        return found if all(status in FINAL for status in found.values()) else None

    final = wait_for(all_final, 120, "orders final")
    stock = wait_for(
        lambda: (doc := db.collection("products").document(sku).get().to_dict())["reserved"] == 0 and doc,
        30,
        "reservations sold",
    )
    return Counter(final.values()), stock


def _placed_per_container(scaled: ComposeStack) -> dict[str, list[str]]:
    return {c: _processed(c, "shop.order.placed.v1") for c in scaled.instance_containers("inventory")}


def test_pushes_spread_over_the_instances_and_each_order_completes_once(scaled: ComposeStack, info: dict) -> None:
    statuses, stock = _sell(info, ORDERS)

    assert statuses == {"CONFIRMED": ORDERS}
    assert (stock["available"], stock.get("sold", 0)) == (STOCK - ORDERS, ORDERS)  # each order reserved once
    placed = _placed_per_container(scaled)
    per_container = {container[:12]: len(ids) for container, ids in placed.items()}
    assert sum(1 for count in per_container.values() if count) >= 2, per_container  # spread, not all on one
    everything = [event_id for ids in placed.values() for event_id in ids]
    assert len(everything) == len(set(everything)) == ORDERS, "each OrderPlaced processed once, by one instance"
    print(f"OrderPlaced deliveries processed per inventory container: {per_container}")


def test_a_crashed_instance_is_replaced_while_the_others_take_its_pushes(scaled: ComposeStack, info: dict) -> None:
    """kill -9 of one instance's process from this machine (a crash: `docker kill` would be an operator's stop,
    which the restart policy respects), then orders at once: the front skips it while Docker restarts it."""
    earlier = {event_id for ids in _placed_per_container(scaled).values() for event_id in ids}
    victim = scaled.instance_containers("inventory")[0]
    before = int(docker("inspect", "--format", "{{.RestartCount}}", victim).strip())
    os.kill(int(docker("inspect", "--format", "{{.State.Pid}}", victim).strip()), signal.SIGKILL)

    statuses, stock = _sell(info, ORDERS)

    assert statuses == {"CONFIRMED": ORDERS}
    assert (stock["available"], stock.get("sold", 0)) == (STOCK - ORDERS, ORDERS)
    restarted = wait_for(
        lambda: (
            docker("inspect", "--format", "{{.RestartCount}} {{.State.Health.Status}}", victim).split()
            == [str(before + 1), "healthy"]
        ),
        120,
        "the killed instance restarted and healthy",
    )
    assert restarted
    everything = [event_id for ids in _placed_per_container(scaled).values() for event_id in ids]
    assert len(everything) == len(set(everything)), "an OrderPlaced processed twice"
    assert len(set(everything) - earlier) == ORDERS  # this test's, each once
