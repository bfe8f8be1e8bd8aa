"""Loading the demo catalog (products.yaml beside this file) into the Firestore emulator.

A product with ``stock_shards: N`` gets its ``available`` spread over ``products/{sku}/stock_shards/{0..N-1}``
(inventory's layout: services/inventory/inventory/stock_shards.py), none on its own document.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PRODUCTS_FILE = Path(__file__).with_name("products.yaml")


def load_products(path: Path = PRODUCTS_FILE) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    currency = data["currency"]
    return [{"currency": currency, "reserved": 0, **product} for product in data["products"]]


def stock_writes(product: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The documents that hold one product and its stock, as (path, fields): ``products/{sku}``, and with
    ``stock_shards: N`` its ``available`` spread as evenly as whole units allow over N shard documents (the product
    document then holds none)."""
    path, shards = f"products/{product['sku']}", int(product.get("stock_shards", 1))
    if shards <= 1:
        return [(path, dict(product))]
    base, extra = divmod(int(product["available"]), shards)
    levels = [
        (f"{path}/stock_shards/{index}", {"available": base + (1 if index < extra else 0), "reserved": 0, "sold": 0})
        for index in range(shards)
    ]
    return [(path, {**product, "available": 0, "reserved": 0}), *levels]


def seed_catalog(firestore_host: str, project: str, path: Path = PRODUCTS_FILE) -> int:
    """Write every product (overwriting stock: a fresh emulator is empty anyway); returns how many."""
    import os

    from google.cloud import firestore

    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = firestore_host
    try:
        client = firestore.Client(project=project)
        batch = client.batch()
        products = load_products(path)
        for product in products:
            for path, fields in stock_writes(product):
                batch.set(client.document(path), fields)
        batch.commit()
        return len(products)
    finally:
        if previous is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = previous
