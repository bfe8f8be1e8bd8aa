"""Configuration from environment variables, checked once at start-up.

| variable | meaning |
| --- | --- |
| ``GOOGLE_CLOUD_PROJECT`` | project id (required) |
| ``K_SERVICE`` | service name; Cloud Run sets it, the local stack too |
| ``TOPIC_<NAME>`` | topic id for a logical topic, e.g. ``TOPIC_ORDER_EVENTS=order-events`` |
| ``BUCKET_<ROLE>`` | bucket name for a role, e.g. ``BUCKET_UPLOADS`` |
| ``PUBSUB_EMULATOR_HOST`` / ``FIRESTORE_EMULATOR_HOST`` | ``host:port`` of an emulator (optional) |
| ``STORAGE_EMULATOR_HOST`` | ``http://host:port`` of fake-gcs-server (optional) |
| ``MAX_DELIVERY_BYTES`` | largest request body a consumer reads (default 10 MiB + base64 overhead) |
| ``LEDGER_TTL_DAYS`` | how long idempotency entries are kept before the TTL policy deletes them |
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from eventkit.errors import ConfigError

_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
_TOPIC_ID = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
# A Pub/Sub message is at most 10 MB; its push body carries it base64-encoded (4/3) plus the envelope.
DEFAULT_MAX_DELIVERY_BYTES = 14 * 1024 * 1024


def env_name(logical: str) -> str:
    """``order-events`` -> ``ORDER_EVENTS``: the suffix of its ``TOPIC_`` / ``BUCKET_`` / ``SERVICE_URL_`` variable.

    The project's one env-name rule: every run of characters other than ``A-Z a-z 0-9`` becomes one ``_``, a
    leading or trailing ``_`` goes, and the rest is upper-cased (``v2.order--events_`` -> ``V2_ORDER_EVENTS``).
    The stack (stack/envnames.py) calls this; Terraform writes it as
    ``upper(trim(replace(name, "/[^A-Za-z0-9]+/", "_"), "_"))`` (terraform/topology.tf, ``local.env_names``), on
    NFC-normalized text as Terraform keeps every string, hence the normalization here.
    """
    return re.sub(r"[^A-Za-z0-9]+", "_", unicodedata.normalize("NFC", logical)).strip("_").upper()


@dataclass(frozen=True)
class Config:
    project: str
    service: str
    topics: Mapping[str, str] = field(default_factory=dict)
    buckets: Mapping[str, str] = field(default_factory=dict)
    pubsub_emulator: str | None = None
    firestore_emulator: str | None = None
    storage_emulator: str | None = None
    max_delivery_bytes: int = DEFAULT_MAX_DELIVERY_BYTES
    ledger_ttl_days: int = 7

    def topic(self, logical: str) -> str:
        """The topic id for a logical topic name; the variable was checked at start-up."""
        try:
            return self.topics[logical]
        except KeyError:
            raise ConfigError(f"topic {logical!r} is not configured: set TOPIC_{env_name(logical)}") from None

    def topic_path(self, logical: str) -> str:
        return f"projects/{self.project}/topics/{self.topic(logical)}"

    def bucket(self, role: str) -> str:
        try:
            return self.buckets[role]
        except KeyError:
            raise ConfigError(f"bucket {role!r} is not configured: set BUCKET_{env_name(role)}") from None

    @classmethod
    def from_env(
        cls,
        *,
        service: str | None = None,
        topics: Iterable[str] = (),
        buckets: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> Config:
        """Read and check the environment. ``topics``/``buckets`` name what this service cannot run without."""
        env = os.environ if environ is None else environ
        problems: list[str] = []

        project = env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCP_PROJECT") or ""
        if not project:
            problems.append("GOOGLE_CLOUD_PROJECT is not set (the Google Cloud project id)")
        service_name = env.get("K_SERVICE") or service or ""
        if not service_name:
            problems.append("K_SERVICE is not set (the service name; Cloud Run sets it)")

        topic_map: dict[str, str] = {}
        for logical in topics:
            var = f"TOPIC_{env_name(logical)}"
            value = env.get(var, "")
            if not value:
                problems.append(f"{var} is not set (topic id for {logical!r})")
            elif not _TOPIC_ID.match(value):
                problems.append(f"{var}={value!r} is not a valid Pub/Sub topic id")
            else:
                topic_map[logical] = value
        bucket_map: dict[str, str] = {}
        for role in buckets:
            var = f"BUCKET_{env_name(role)}"
            value = env.get(var, "")
            if not value:
                problems.append(f"{var} is not set (bucket for {role!r})")
            else:
                bucket_map[role] = value

        for var in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST"):
            value = env.get(var)
            if value and not _HOST_PORT.match(value):
                problems.append(f"{var}={value!r} must be host:port, e.g. 127.0.0.1:8085")
        storage = env.get("STORAGE_EMULATOR_HOST")
        if storage and not re.match(r"^https?://", storage):
            problems.append(f"STORAGE_EMULATOR_HOST={storage!r} must be a URL, e.g. http://127.0.0.1:8087")

        max_bytes = positive_int(env, "MAX_DELIVERY_BYTES", DEFAULT_MAX_DELIVERY_BYTES, problems)
        ttl_days = positive_int(env, "LEDGER_TTL_DAYS", 7, problems)

        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return cls(
            project=project,
            service=service_name,
            topics=topic_map,
            buckets=bucket_map,
            pubsub_emulator=env.get("PUBSUB_EMULATOR_HOST") or None,
            firestore_emulator=env.get("FIRESTORE_EMULATOR_HOST") or None,
            storage_emulator=storage or None,
            max_delivery_bytes=max_bytes,
            ledger_ttl_days=ttl_days,
        )


def positive_int(env: Mapping[str, str], var: str, default: int, problems: list[str]) -> int:
    """``var`` as a positive integer (``default`` when unset); a bad value is added to ``problems``."""
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{var}={raw!r} must be a positive integer")
        return default
    if value <= 0:
        problems.append(f"{var}={raw!r} must be a positive integer")
        return default
    return value
