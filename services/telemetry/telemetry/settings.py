"""The telemetry services' own settings, read from the environment once, at start-up.

| variable | default | meaning |
| --- | --- | --- |
| ``TELEMETRY_WINDOW_SECONDS`` | 60 | window size of the statistics |
| ``TELEMETRY_RETENTION_SECONDS`` | 86400 | readings older than this are refused (ingest) or failed (analytics) |
| ``TELEMETRY_MAX_FUTURE_SECONDS`` | 300 | how far ahead of the server clock a reading's ``ts`` may be |
| ``TELEMETRY_MAX_BODY_BYTES`` | 1048576 | largest ``POST /telemetry`` body (larger: 413) |
| ``TELEMETRY_THRESHOLDS`` | none | global thresholds as JSON, ``{"temp": {"above": 80}}``; Firestore overrides |

Retention must not exceed the idempotency ledger's TTL (``LEDGER_TTL_DAYS``): a duplicate that arrives after
its first copy's ledger entry expired would count twice — unless it is already too old to be accepted.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from eventkit import positive_int
from eventkit.errors import ConfigError
from telemetry.alerts import Threshold, parse_thresholds
from telemetry.validation import Limits


@dataclass(frozen=True)
class Settings:
    window_seconds: int = 60
    limits: Limits = field(default_factory=Limits)
    max_body_bytes: int = 1024 * 1024
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        problems: list[str] = []
        window = positive_int(env, "TELEMETRY_WINDOW_SECONDS", 60, problems)
        retention = positive_int(env, "TELEMETRY_RETENTION_SECONDS", 86400, problems)
        future = positive_int(env, "TELEMETRY_MAX_FUTURE_SECONDS", 300, problems)
        max_body = positive_int(env, "TELEMETRY_MAX_BODY_BYTES", 1024 * 1024, problems)
        ledger_days = positive_int(env, "LEDGER_TTL_DAYS", 7, problems)
        if retention > ledger_days * 86400:
            problems.append(
                f"TELEMETRY_RETENTION_SECONDS={retention} exceeds the ledger TTL (LEDGER_TTL_DAYS={ledger_days}); "
                "late duplicates could count twice"
            )
        thresholds: dict[str, Threshold] = {}
        raw = env.get("TELEMETRY_THRESHOLDS")
        if raw:
            try:
                thresholds = parse_thresholds(json.loads(raw), "TELEMETRY_THRESHOLDS")
            except ValueError as exc:  # JSONDecodeError is a ValueError
                problems.append(str(exc) if "TELEMETRY_THRESHOLDS" in str(exc) else f"TELEMETRY_THRESHOLDS: {exc}")
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return cls(
            window_seconds=window,
            limits=Limits(max_future=timedelta(seconds=future), retention=timedelta(seconds=retention)),
            max_body_bytes=max_body,
            thresholds=thresholds,
        )


@functools.cache
def load_settings() -> Settings:
    """The process's settings, read once (main.py reads them at import, so a bad value stops start-up)."""
    return Settings.from_env()
