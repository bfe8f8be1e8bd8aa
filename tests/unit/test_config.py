"""Configuration from the environment: every problem named at start-up."""

from __future__ import annotations

import pytest

from eventkit.config import Config, env_name
from eventkit.errors import ConfigError
from stack.envnames import bucket_var, service_url_var, topic_var

BASE = {"GOOGLE_CLOUD_PROJECT": "p", "K_SERVICE": "inventory"}


def test_topics_and_buckets_come_from_named_variables() -> None:
    config = Config.from_env(
        topics=["order-events"],
        buckets=["uploads"],
        environ={**BASE, "TOPIC_ORDER_EVENTS": "order-events-prod", "BUCKET_UPLOADS": "b-up"},
    )

    assert config.topic("order-events") == "order-events-prod"
    assert config.topic_path("order-events") == "projects/p/topics/order-events-prod"
    assert config.bucket("uploads") == "b-up"


def test_every_missing_or_malformed_variable_is_named_in_one_error() -> None:
    environ = {"PUBSUB_EMULATOR_HOST": "nonsense", "MAX_DELIVERY_BYTES": "-3"}

    with pytest.raises(ConfigError) as raised:
        Config.from_env(topics=["order-events"], environ=environ)

    message = str(raised.value)
    for name in (
        "GOOGLE_CLOUD_PROJECT",
        "K_SERVICE",
        "TOPIC_ORDER_EVENTS",
        "PUBSUB_EMULATOR_HOST",
        "MAX_DELIVERY_BYTES",
    ):
        assert name in message


def test_service_name_falls_back_to_the_consumer_name() -> None:
    assert Config.from_env(service="inventory", environ={"GOOGLE_CLOUD_PROJECT": "p"}).service == "inventory"


def test_asking_for_an_unconfigured_topic_names_its_variable() -> None:
    with pytest.raises(ConfigError, match="TOPIC_ORDER_EVENTS"):
        Config.from_env(environ=BASE).topic("order-events")


def test_env_name_turns_names_into_variable_suffixes() -> None:
    assert env_name("order-events") == "ORDER_EVENTS"
    assert env_name("inventory-order-events-dead-letter") == "INVENTORY_ORDER_EVENTS_DEAD_LETTER"


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("order--events", "ORDER_EVENTS"),  # a run of separators is one "_"
        ("v2.order..events", "V2_ORDER_EVENTS"),  # dots are separators; digits stay
        ("-order-events-", "ORDER_EVENTS"),  # no leading or trailing "_"
        ("__raw_exports__", "RAW_EXPORTS"),
        ("9lives", "9LIVES"),
        ("x~y+z%w", "X_Y_Z_W"),
        ("e\u0301t\u00e9", "T"),  # non-ASCII letters are separators, after NFC (as Terraform keeps strings)
        ("---", ""),
    ],
)
def test_env_name_collapses_trims_and_upper_cases_awkward_names(name: str, suffix: str) -> None:
    assert env_name(name) == suffix


def test_the_stack_names_variables_by_eventkits_rule() -> None:
    assert topic_var("v2.order..events-") == f"TOPIC_{env_name('v2.order..events-')}" == "TOPIC_V2_ORDER_EVENTS"
    assert bucket_var("raw__exports_") == "BUCKET_RAW_EXPORTS"
    assert service_url_var("order-saga") == "SERVICE_URL_ORDER_SAGA"
