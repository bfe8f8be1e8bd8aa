"""Which port each part of a stack listens on, derived from one base port so two stacks never overlap.

    base + 0   Pub/Sub emulator
    base + 1   Firestore emulator
    base + 2   fake-gcs-server (Cloud Storage)
    base + 3   Firestore emulator websocket   (opened by the emulator itself; pinned here)
    base + 4   Firestore emulator webchannel  (same)
    base + 5   SMTP sink (mail from the notifications service, saved as .eml files)
    base + 10, + 11, ...   services, in topology order (a service with several instances: its front)
    then                   the instances of each service that runs several, in topology order

The Java emulators also bind one or two ephemeral ports each (gRPC internals); those come from the kernel's
ephemeral range and cannot be pinned.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from stack.errors import StackError
from stack.processes import port_is_free

DEFAULT_PORT_BASE = 8085
SERVICE_OFFSET = 10
MAX_PORT = 65535


@dataclass(frozen=True)
class PortLayout:
    base: int
    services: tuple[str, ...]  # topology order
    instances: Mapping[str, int] = field(default_factory=dict)  # service -> instances, where more than one

    def __post_init__(self) -> None:
        last = self.base + SERVICE_OFFSET + max(len(self.services) + self._instance_ports() - 1, 0)
        if self.base < 1 or last > MAX_PORT:
            raise StackError(f"port base {self.base} puts ports outside 1..{MAX_PORT} (last would be {last})")

    @property
    def pubsub(self) -> int:
        return self.base

    @property
    def firestore(self) -> int:
        return self.base + 1

    @property
    def storage(self) -> int:
        return self.base + 2

    @property
    def firestore_websocket(self) -> int:
        return self.base + 3

    @property
    def firestore_webchannel(self) -> int:
        return self.base + 4

    @property
    def smtp(self) -> int:
        return self.base + 5

    def service(self, name: str) -> int:
        return self.base + SERVICE_OFFSET + self.services.index(name)

    def instance(self, name: str, number: int) -> int:
        """The port of instance ``number`` (1-based) of a service that runs several."""
        port = self.base + SERVICE_OFFSET + len(self.services)
        for service in self.services:
            count = self.instances.get(service, 1)
            if service == name and 1 <= number <= count and count > 1:
                return port + number - 1
            port += count if count > 1 else 0
        raise KeyError(f"{name} has no instance {number}")

    def _instance_ports(self) -> int:
        return sum(count for count in self.instances.values() if count > 1)

    def all(self) -> dict[str, int]:
        """Every pinned port by what uses it."""
        ports = {
            "pubsub": self.pubsub,
            "firestore": self.firestore,
            "storage": self.storage,
            "firestore websocket": self.firestore_websocket,
            "firestore webchannel": self.firestore_webchannel,
            "smtp": self.smtp,
        }
        ports.update({name: self.service(name) for name in self.services})
        for name in self.services:
            count = self.instances.get(name, 1)
            ports.update({f"{name}.{n}": self.instance(name, n) for n in range(1, count + 1) if count > 1})
        return ports


def find_free_port_base(services: int, *, low: int = 20000, high: int = 32000, step: int = 20) -> int:
    """A base whose whole range is free right now (for tests that run next to a dev stack).

    Stays below 32768, where Linux's ephemeral range begins, so the emulators' own unpinned ports can't land
    in it. Racy by nature (another process may take a port before `up`), but `up` then fails clearly.
    """
    step = max(step, SERVICE_OFFSET + services)  # ranges never overlap, however many services
    slots = (high - low) // step
    first = random.randrange(slots)  # concurrent test runs start their search far apart
    for slot in range(slots):
        base = low + ((first + slot) % slots) * step
        layout = PortLayout(base, tuple(f"service-{i}" for i in range(services)))
        if all(port_is_free(port) for port in layout.all().values()):
            return base
    raise StackError(f"no free port range in {low}..{high}")


def ensure_free(layout: PortLayout) -> None:
    """Fail before starting anything if a port is taken, naming it and how to move the whole range."""
    for user, port in layout.all().items():
        if not port_is_free(port):
            raise StackError(
                f"port {port} (for {user}) is already in use; "
                f"move the stack's ports with --port-base N (now {layout.base}; uses N..N+4 and N+10 onwards)"
            )
