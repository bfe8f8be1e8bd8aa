"""Several instances per service on the local stack: the option, the ports, the log files, the round robin."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stack.errors import StackError
from stack.front import RoundRobin
from stack.instances import instance_counts, log_name, parse_instances
from stack.ports import PortLayout
from stack.state import process_kind
from stack.topology import DEFAULT_PATH as TOPOLOGY_FILE
from stack.topology import load_topology


def test_instances_are_given_as_service_equals_count_comma_separated_or_repeated() -> None:
    assert parse_instances(["inventory=3,payments=2", "orders=2"]) == {"inventory": 3, "payments": 2, "orders": 2}
    assert parse_instances([]) == {}


@pytest.mark.parametrize("spec", ["inventory", "inventory=0", "inventory=11", "=3", "inventory=x"])
def test_an_instance_count_that_cannot_run_is_refused_naming_it(spec: str) -> None:
    with pytest.raises(StackError, match=rf"expected SERVICE=N with N in 1\.\.10, got '{spec}'"):
        parse_instances([spec])


def test_topology_instances_count_unless_the_option_names_the_service(tmp_path: Path) -> None:
    document = yaml.safe_load(TOPOLOGY_FILE.read_text())
    document["services"]["inventory"]["instances"] = 3
    document["services"]["payments"]["instances"] = 2
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(document))
    topology = load_topology(topology_file)
    assert instance_counts(topology, {}) == {"inventory": 3, "payments": 2}
    assert instance_counts(topology, {"inventory": 1, "orders": 2}) == {"payments": 2, "orders": 2}
    assert instance_counts(load_topology(), {}) == {}  # the repository's file: one instance each
    with pytest.raises(StackError, match="--instances: no service named inventroy"):
        instance_counts(topology, {"inventroy": 2})


def test_instances_get_ports_after_the_services_and_the_service_port_goes_to_the_front() -> None:
    layout = PortLayout(20000, ("orders", "inventory", "payments", "notifications"), {"inventory": 3, "payments": 2})
    assert [layout.service(name) for name in layout.services] == [20010, 20011, 20012, 20013]
    assert [layout.instance("inventory", n) for n in (1, 2, 3)] == [20014, 20015, 20016]
    assert [layout.instance("payments", n) for n in (1, 2)] == [20017, 20018]
    assert len(set(layout.all().values())) == len(layout.all()) == 6 + 4 + 5  # no port used twice
    with pytest.raises(KeyError, match="orders has no instance 1"):
        layout.instance("orders", 1)
    with pytest.raises(StackError, match=r"outside 1\.\.65535"):
        PortLayout(65520, ("orders",), {"orders": 10})


def test_instances_share_their_services_log_and_a_front_has_its_own() -> None:
    assert log_name("inventory.2", ["inventory"]) == "inventory"
    assert log_name("inventory", ["inventory"]) == "inventory.front"
    assert log_name("payments", ["inventory"]) == "payments"
    assert [process_kind(name) for name in ("inventory.2", "inventory", "pubsub", "supervisor")] == [
        "instance",
        "service",
        "emulator",
        "helper",
    ]


def test_round_robin_starts_each_turn_at_the_next_instance_and_offers_the_others_after_it() -> None:
    turns = RoundRobin([1, 2, 3])
    assert [turns.order() for _ in range(4)] == [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 2, 3]]
