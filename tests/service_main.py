"""A service's entry module (``services/<name>/main.py``) loaded in the test's process: the one way tests do it.

Every service folder is on sys.path for the whole session (pyproject.toml, ``[tool.pytest.ini_options]
pythonpath``), as functions-framework puts the entry file's folder there in an image and in the local stack, so a
service's package imports as it does when deployed (``inventory.reservation``). Only the entry module needs this
loader: every service has a ``main.py``, so each load gets a name of its own and runs the module afresh, reading
the environment the test has set (``service_main`` in tests/conftest.py sets it for one test).
"""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from types import ModuleType

SERVICES = Path(__file__).resolve().parents[1] / "services"


def load_main(service: str) -> ModuleType:
    """``services/<service>/main.py`` executed now, as a new module; what it raises at import is raised here."""
    path = SERVICES / service / "main.py"
    spec = importlib.util.spec_from_file_location(f"{service}_main_{uuid.uuid4().hex[:8]}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{path}: no such service entry module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
