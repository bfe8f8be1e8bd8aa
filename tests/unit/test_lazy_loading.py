"""Start-up work deferred to first use: catalog domains, the package's runtime, the storage object's validator.

A lazily loaded catalog must answer every lookup exactly as one built with every domain at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import BaseModel

import eventkit.catalog as catalog_package
from eventkit.catalog import _AGGREGATES, _DOMAIN_MODULES, CATALOG, build_catalog
from eventkit.catalog._lazy import LazyCatalog
from eventkit.errors import UnknownEventTypeError

pytestmark = pytest.mark.unit

ALL_TYPES = build_catalog().types


def fresh() -> LazyCatalog:
    return LazyCatalog(_AGGREGATES)


def test_each_type_names_the_aggregate_of_its_own_domain() -> None:
    # The prefix table only makes lookups cheap (a miss loads every domain), but a wrong entry would be a slow path.
    for domain in catalog_package.DOMAINS:
        for event_type in domain.MODELS:
            assert _AGGREGATES[event_type.split(".")[1]] == domain.__name__, event_type
    assert set(_AGGREGATES.values()) == set(_DOMAIN_MODULES)


def test_the_lazy_catalog_knows_exactly_the_eager_catalogs_types_and_models() -> None:
    eager = build_catalog()
    assert fresh().types == ALL_TYPES == CATALOG.types
    for event_type in ALL_TYPES:
        assert fresh().model_for(event_type) is eager.model_for(event_type)


@pytest.mark.parametrize("event_type", ["shop.order.placed.v2", "shop.nothing.v1", "order.placed", "", "shop"])
def test_an_unknown_type_fails_as_in_the_eager_catalog(event_type: str) -> None:
    with pytest.raises(UnknownEventTypeError) as eager:
        build_catalog().model_for(event_type)
    with pytest.raises(UnknownEventTypeError) as lazy:
        fresh().model_for(event_type)
    assert str(lazy.value) == str(eager.value)


def test_registering_a_second_model_for_a_not_yet_loaded_type_is_refused() -> None:
    class Other(BaseModel):
        x: int

    catalog = fresh()
    with pytest.raises(ValueError, match="already registered"):
        catalog.register("shop.telemetry.alert.v1", Other)
    catalog.register("shop.telemetry.alert.v1", build_catalog().model_for("shop.telemetry.alert.v1"))
    catalog.register("shop.custom.thing.v1", Other)
    assert catalog.model_for("shop.custom.thing.v1") is Other


def test_concurrent_first_lookups_all_get_their_model() -> None:
    eager = build_catalog()
    for _ in range(20):
        catalog, start = fresh(), threading.Barrier(8)

        def look_up(event_type: str, catalog: LazyCatalog = catalog, start: threading.Barrier = start) -> bool:
            start.wait()
            return catalog.model_for(event_type) is eager.model_for(event_type)

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(look_up, [ALL_TYPES[i % len(ALL_TYPES)] for i in range(8)]))


def test_the_order_names_and_domains_are_still_the_packages_attributes() -> None:
    from eventkit.catalog import ORDER_PLACED, OrderPlaced
    from eventkit.catalog.orders import ORDER_PLACED as placed
    from eventkit.catalog.orders import OrderPlaced as model

    assert (ORDER_PLACED, OrderPlaced) == (placed, model)
    assert catalog_package.telemetry.__name__ == "eventkit.catalog.telemetry"
    assert catalog_package.DOMAINS is catalog_package.DOMAINS
    with pytest.raises(AttributeError):
        catalog_package.NOT_A_NAME  # noqa: B018


def imported_after(code: str) -> set[str]:
    found = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(found.stdout.split())


def test_importing_the_catalog_imports_no_domain_until_a_lookup() -> None:
    assert not set(_DOMAIN_MODULES) & imported_after("import eventkit.catalog")
    loaded = imported_after("from eventkit.catalog import CATALOG\nCATALOG.model_for('shop.telemetry.alert.v1')")
    assert set(_DOMAIN_MODULES) & loaded == {"eventkit.catalog.telemetry"}


def test_importing_an_eventkit_module_does_not_import_the_consumer_runtime() -> None:
    loaded = imported_after("import eventkit.errors")
    assert not {"eventkit.consumer", "eventkit.catalog", "pydantic"} & loaded
    assert "eventkit.consumer" in imported_after("from eventkit import Consumer")


def test_the_storage_object_model_builds_its_validator() -> None:
    # Deferred to the first storage delivery (only the images service gets those); a broken model fails here.
    from eventkit.storage_object import ObjectFinalized

    assert ObjectFinalized.model_rebuild(force=True) is True
    assert ObjectFinalized.model_validate({"bucket": "b", "name": "n", "generation": "3"}).key == "b/n#3"


@pytest.mark.parametrize(
    ("target", "expected"),
    [("api", "True False False"), ("handle_event", "False True True"), (None, "True True True")],
)
def test_each_telemetry_service_imports_its_own_side_at_start_up(target: str | None, expected: str) -> None:
    # One source, two services: ingest (api) never uses the consumer runtime; without FUNCTION_TARGET, both load.
    source = Path(__file__).resolve().parents[2] / "services" / "telemetry"
    env = {key: value for key, value in os.environ.items() if key != "FUNCTION_TARGET"}
    if target is not None:
        env["FUNCTION_TARGET"] = target
    loaded = "print(*(m in sys.modules for m in ('telemetry.ingest', 'telemetry.analytics', 'eventkit.consumer')))"
    result = subprocess.run(
        [sys.executable, "-c", f"import sys, main; {loaded}"],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip() == expected
