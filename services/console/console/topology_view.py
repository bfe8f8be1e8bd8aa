"""What the overview draws: the services, topics and subscriptions of topology.yaml, by name.

Only read here, never validated: stack/topology.py validates the file (and Terraform reads the same one), and a
test keeps this view equal to that loader's. The file is found beside the package in the image (services/Dockerfile
copies it into /app) and at the repository root in a checkout; ``TOPOLOGY_FILE`` names another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

FILE_NAME = "topology.yaml"


@dataclass(frozen=True)
class ServiceView:
    name: str
    target: str
    publishes: tuple[str, ...]


@dataclass(frozen=True)
class SubscriptionView:
    name: str
    topic: str
    push_to: str
    dead_letter_topic: str | None


@dataclass(frozen=True)
class TopicView:
    name: str
    description: str
    dead_letter: bool


@dataclass(frozen=True)
class TopologyView:
    services: tuple[ServiceView, ...]
    topics: tuple[TopicView, ...]
    subscriptions: tuple[SubscriptionView, ...]

    def topic_of(self, subscription: str | None) -> str | None:
        return next((s.topic for s in self.subscriptions if s.name == subscription), None)

    def publishers_of(self, topic: str) -> tuple[str, ...]:
        return tuple(s.name for s in self.services if topic in s.publishes)

    def subscriptions_on(self, topic: str) -> tuple[SubscriptionView, ...]:
        return tuple(s for s in self.subscriptions if s.topic == topic)

    def subscriptions_to(self, service: str) -> tuple[SubscriptionView, ...]:
        return tuple(s for s in self.subscriptions if s.push_to == service)


class TopologyNotFound(Exception):
    pass


def find_topology(start: Path | None = None) -> Path:
    """``TOPOLOGY_FILE``, else the first topology.yaml in this package's folder or one above it."""
    if named := os.environ.get("TOPOLOGY_FILE"):
        return Path(named)
    folder = (start or Path(__file__)).resolve().parent
    for candidate in [folder, *folder.parents]:
        if (candidate / FILE_NAME).is_file():
            return candidate / FILE_NAME
    raise TopologyNotFound(f"no {FILE_NAME} in {folder} or above it; set TOPOLOGY_FILE")


@cache
def load_view(path: Path | None = None) -> TopologyView:
    data = yaml.safe_load((path or find_topology()).read_text(encoding="utf-8"))
    return TopologyView(
        services=tuple(
            ServiceView(name=name, target=raw["target"], publishes=tuple(raw.get("publishes") or ()))
            for name, raw in data["services"].items()
        ),
        topics=tuple(
            TopicView(
                name=name,
                description=(raw or {}).get("description", ""),
                dead_letter=bool((raw or {}).get("dead_letter")),
            )
            for name, raw in data["topics"].items()
        ),
        subscriptions=tuple(
            SubscriptionView(
                name=name, topic=raw["topic"], push_to=raw["push_to"], dead_letter_topic=raw.get("dead_letter_topic")
            )
            for name, raw in data["subscriptions"].items()
        ),
    )
