"""Environment variable names shared by the runner, the bootstrap and docker-compose.

A resource name like ``order-events`` becomes ``TOPIC_ORDER_EVENTS``. The suffix is eventkit's rule
(``eventkit.config.env_name``, the one the services read their configuration by): the stack names the variables
with it rather than with a copy of it.
"""

from __future__ import annotations

from eventkit.config import env_name


def env_var(prefix: str, name: str) -> str:
    """``env_var("TOPIC", "order-events") == "TOPIC_ORDER_EVENTS"``."""
    return f"{prefix}_{env_name(name)}"


def topic_var(topic: str) -> str:
    return env_var("TOPIC", topic)


def bucket_var(role: str) -> str:
    return env_var("BUCKET", role)


def service_url_var(service: str) -> str:
    return env_var("SERVICE_URL", service)
