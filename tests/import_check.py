"""Which modules an installation really has: each module named is imported, and where it came from is reported.

Two halves. On the test's side, ``source_modules`` lists the modules a source tree holds (so the expectation comes
from the tree, not from what an install happened to keep). On the installation's side this file runs as a script,
in the interpreter under test: ``python - NAME...`` with the file on stdin, so it can be piped into a container
as well as into a venv. It prints one JSON object, ``{name: {"file": ...} | {"error": ...}}``.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path


def source_modules(root: Path, *, package: str | None = None) -> list[str]:
    """Dotted names of the modules under ``root``: ``package``'s folder, or a folder whose modules and packages are
    top-level (a service's folder: ``main``, ``inventory``, ``inventory.reservation``)."""
    base = root.parent if package else root
    names = []
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def import_all(names: list[str]) -> dict[str, dict[str, str | None]]:
    results: dict[str, dict[str, str | None]] = {}
    for name in names:
        try:
            module = importlib.import_module(name)
        except BaseException as exc:  # a config check's SystemExit is a finding too
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        else:
            results[name] = {"file": getattr(module, "__file__", None)}
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["--path"]:  # the entry file's folder, appended to sys.path as functions-framework does
        sys.path.append(sys.argv[2])
        del sys.argv[1:3]
    json.dump(import_all(sys.argv[1:]), sys.stdout)
