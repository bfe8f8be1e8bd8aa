"""Loading the demo catalog (products.yaml beside this file) into the Firestore emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PRODUCTS_FILE = Path(__file__).with_name("products.yaml")


def load_products(path: Path = PRODUCTS_FILE) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    currency = data["currency"]
    return [{"currency": currency, "reserved": 0, **product} for product in data["products"]]


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
            batch.set(client.collection("products").document(product["sku"]), product)
        batch.commit()
        return len(products)
    finally:
        if previous is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = previous
