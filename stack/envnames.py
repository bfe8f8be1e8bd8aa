"""Environment variable names shared by the runner, the bootstrap and docker-compose.

A resource name like ``order-events`` becomes ``TOPIC_ORDER_EVENTS``; services read their configuration
from these, so the spelling lives in one place.
"""

from __future__ import annotations

import re


def env_var(prefix: str, name: str) -> str:
    """``env_var("TOPIC", "order-events") == "TOPIC_ORDER_EVENTS"``."""
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}"


def topic_var(topic: str) -> str:
    return env_var("TOPIC", topic)


def bucket_var(role: str) -> str:
    return env_var("BUCKET", role)


def service_url_var(service: str) -> str:
    return env_var("SERVICE_URL", service)
