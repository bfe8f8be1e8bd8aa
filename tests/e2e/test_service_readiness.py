"""Every service answers the readiness probe (GET /ready) with its own name, and a probe is never a delivery."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from eventkit.failures import FAILURES_COLLECTION
from eventkit.readiness import READY_PATH

pytestmark = pytest.mark.compose


def test_every_service_answers_ready_and_no_probe_is_recorded_as_a_failed_delivery(
    clean_stack: dict[str, Any], db: Any
) -> None:
    answers = {name: requests.get(f"{url}{READY_PATH}", timeout=10) for name, url in clean_stack["services"].items()}

    assert {name: response.status_code for name, response in answers.items()} == dict.fromkeys(answers, 200)
    assert {name: response.json()["service"] for name, response in answers.items()} == {n: n for n in answers}
    assert list(db.collection(FAILURES_COLLECTION).stream()) == []
