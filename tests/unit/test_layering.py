"""The layering: services import eventkit's public surface only and never each other; eventkit imports no service.

Read from the source (``ast``), so a violation fails here before any service runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventkit

SERVICES = Path(__file__).resolve().parents[2] / "services"
EVENTKIT = SERVICES / "eventkit" / "eventkit"
# What services may import from eventkit (the package's docstring says why each is public).
PUBLIC_MODULES = {
    "eventkit",
    "eventkit.catalog",
    "eventkit.catalog.images",
    "eventkit.catalog.orders",
    "eventkit.catalog.telemetry",
    "eventkit.errors",
    "eventkit.failure_records",
    "eventkit.failures",
    "eventkit.http_api",
    "eventkit.memory",
    "eventkit.newest_first",
    "eventkit.processed",
    "eventkit.replay",
    "eventkit.waiting_counts",
}


def service_folders() -> list[Path]:
    return sorted(p for p in SERVICES.iterdir() if p.is_dir() and p.name != "eventkit" and any(p.glob("*.py")))


def sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def own_modules(folder: Path) -> set[str]:
    """The top-level names a service folder defines: its modules and packages."""
    return {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if (p / "__init__.py").exists()}


def imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(module, names imported from it, line) for every absolute import in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names], node.lineno


def eventkit_violations(path: Path, root: Path = SERVICES) -> list[str]:
    found = []
    for module, names, line in imports(path):
        if module.split(".")[0] != "eventkit":
            continue
        if module not in PUBLIC_MODULES:
            found.append(f"{path.relative_to(root)}:{line}: imports {module}, not public")
        elif module == "eventkit":
            found += [
                f"{path.relative_to(root)}:{line}: imports eventkit.{name}, not in eventkit.__all__"
                for name in names
                if name not in eventkit.__all__
            ]
    return found


@pytest.mark.parametrize("folder", service_folders(), ids=lambda p: p.name)
def test_a_service_imports_only_eventkits_public_surface(folder: Path) -> None:
    assert [v for path in sources(folder) for v in eventkit_violations(path)] == []


@pytest.mark.parametrize("folder", service_folders(), ids=lambda p: p.name)
def test_a_service_never_imports_another_service(folder: Path) -> None:
    others = {name: other.name for other in service_folders() if other != folder for name in own_modules(other)}
    mine = own_modules(folder)
    crossing = [
        f"{path.relative_to(SERVICES)}:{line}: imports {module} ({others[module.split('.')[0]]})"
        for path in sources(folder)
        for module, _, line in imports(path)
        if module.split(".")[0] in others and module.split(".")[0] not in mine
    ]
    assert crossing == []


def test_eventkit_imports_no_service() -> None:
    service_names = {name for folder in service_folders() for name in own_modules(folder)} - {"main"}
    crossing = [
        f"{path.relative_to(SERVICES)}:{line}: imports {module}"
        for path in sources(EVENTKIT)
        for module, _, line in imports(path)
        if module.split(".")[0] in service_names or module == "main"
    ]
    assert crossing == []


def test_every_public_name_of_eventkit_resolves() -> None:
    assert [name for name in eventkit.__all__ if getattr(eventkit, name, None) is None] == []


def test_the_check_catches_a_service_importing_eventkit_internals(tmp_path: Path) -> None:
    bad = tmp_path / "gateway.py"
    bad.write_text("from eventkit.transactions import run_read_write\nfrom eventkit import Consumer, _LAZY\n")
    assert [v.split(": ", 1)[1] for v in eventkit_violations(bad, tmp_path)] == [
        "imports eventkit.transactions, not public",
        "imports eventkit._LAZY, not in eventkit.__all__",
    ]
