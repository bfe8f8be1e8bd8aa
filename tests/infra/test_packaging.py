"""What a non-editable install ships: every module of eventkit and of each service imports from outside the
source tree.

The suite itself runs on an editable eventkit and imports services from their folders, so a module left out of
the install (as eventkit.catalog once was, from every image) would pass everywhere else. Here eventkit is built
and installed from a copy into a fresh venv, each service's folder is copied as services/Dockerfile copies it
into /app (.dockerignore applied), and a fresh interpreter in isolated mode (no PYTHONPATH, no current folder),
with that copy on sys.path as functions-framework puts it there, imports every module the source tree holds:
``main`` and the service's package. The third-party dependencies come from the project's venv, read-only,
through a path entry: its editable eventkit is not visible that way.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from container_checks import (
    APP_FOLDER,
    COMPOSE_EMULATORS,
    SERVICE_DOCKERFILE,
    copied_into,
    dockerignore_excludes,
    parse_stages,
    read_dockerignore,
    service_build_args,
)
from import_check import source_modules

from stack.services import service_env
from stack.topology import Service, load_topology

REPO = Path(__file__).resolve().parents[2]
EVENTKIT_SOURCE = REPO / "services" / "eventkit"
IMPORT_CHECK = Path(__file__).resolve().parents[1] / "import_check.py"
TOPOLOGY = load_topology()


def _run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, **kwargs)


def copy_as_built(source: Path, dest: Path, *, patterns: list[str] | None = None) -> Path:
    """``source`` (a file or folder of the repository) copied into ``dest`` with what .dockerignore (or
    ``patterns``) leaves out left out."""
    patterns = read_dockerignore() if patterns is None else patterns
    for path in sorted(source.rglob("*")) if source.is_dir() else [source]:
        relative = path.relative_to(REPO).as_posix()
        if path.is_file() and not dockerignore_excludes(patterns, relative):
            target = dest / (path.relative_to(source) if source.is_dir() else path.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return dest


def app_as_built(service: Service, dest: Path, *, patterns: list[str] | None = None) -> Path:
    """What the service's image holds in /app: what services/Dockerfile copies there, built for ``service``."""
    final = parse_stages(SERVICE_DOCKERFILE.read_text())[-1]
    sources = copied_into(final, APP_FOLDER, service_build_args(service))
    assert sources, f"services/Dockerfile copies nothing into {APP_FOLDER}"
    for source in sources:
        copy_as_built(REPO / source, dest, patterns=patterns)
    return dest


class Venv:
    """A fresh venv that sees the project venv's third-party packages but none of the project's own code."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / "bin" / "python"
        created = _run(sys.executable, "-m", "venv", "--without-pip", str(root))
        assert created.returncode == 0, created.stderr
        self.site_packages = Path(
            _run(str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
        )
        # A plain path entry: the project venv's .pth files (its editable eventkit among them) are not run.
        dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
        (self.site_packages / "project_dependencies.pth").write_text("\n".join(sorted(dependencies)) + "\n")

    def pip_install(self, *args: str) -> None:
        result = _run(sys.executable, "-m", "pip", "--python", str(self.python), "install", "--quiet",
                      "--disable-pip-version-check", "--no-deps", *args)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    def import_all(self, names: list[str], *, cwd: Path, path: Path | None = None, env: dict[str, str] | None = None):
        """``{module: {"file"} | {"error"}}``, imported by this venv's Python in isolated mode (-I)."""
        extra = ["--path", str(path)] if path else []
        result = _run(str(self.python), "-I", "-", *extra, *names, input=IMPORT_CHECK.read_text(), cwd=cwd, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """The venv with eventkit installed as the images install it: built from a copy, not editable."""
    root = tmp_path_factory.mktemp("packaging")
    venv = Venv(root / "venv")
    venv.pip_install(str(copy_as_built(EVENTKIT_SOURCE, root / "eventkit-source")))
    return venv


def _errors(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: result["error"] for name, result in results.items() if "error" in result}


def _outside(results: dict[str, dict[str, Any]], folder: Path) -> dict[str, str | None]:
    return {
        name: result.get("file")
        for name, result in results.items()
        if "file" in result and not str(result["file"]).startswith(str(folder))
    }


def test_eventkit_installs_every_module_of_its_source_tree(venv: Venv, tmp_path: Path) -> None:
    modules = source_modules(EVENTKIT_SOURCE / "eventkit", package="eventkit")
    assert "eventkit.catalog._base" in modules  # the subpackage a hand-kept package list once left out

    results = venv.import_all(modules, cwd=tmp_path)

    assert _errors(results) == {}
    assert _outside(results, venv.site_packages) == {}, "imported from somewhere else than the install"


def _environment(service: Service) -> dict[str, str]:
    """The service's configuration (its imports check some of it at start-up), as compose gives it."""
    return service_env(service, TOPOLOGY, project="shop-packaging", port=8080, emulators=COMPOSE_EMULATORS, base_env={})


@pytest.mark.parametrize("service", TOPOLOGY.services.values(), ids=list(TOPOLOGY.services))
def test_every_module_of_a_service_imports_as_its_image_holds_it(venv: Venv, service: Service, tmp_path: Path) -> None:
    app = app_as_built(service, tmp_path / "app")
    modules = source_modules(service.source)  # what the source tree holds, not what the copy kept
    assert {"main", service.source.name} <= set(modules), "main.py and the service's package"
    eventkit_modules = source_modules(EVENTKIT_SOURCE / "eventkit", package="eventkit")

    results = venv.import_all([*modules, *eventkit_modules], cwd=tmp_path, path=app, env=_environment(service))

    assert _errors(results) == {}
    assert _outside({name: results[name] for name in modules}, app) == {}
    assert _outside({name: results[name] for name in eventkit_modules}, venv.site_packages) == {}


def test_a_service_package_left_out_of_the_image_is_found(venv: Venv, tmp_path: Path) -> None:
    """The check itself: the inventory image with its package left out (a .dockerignore line too many)."""
    inventory = TOPOLOGY.services["inventory"]
    app = app_as_built(inventory, tmp_path / "app", patterns=[*read_dockerignore(), "services/*/inventory"])
    assert (app / "main.py").is_file() and not (app / "inventory").exists()

    results = venv.import_all(source_modules(inventory.source), cwd=tmp_path, path=app, env=_environment(inventory))

    assert set(_errors(results)) == {"main", "inventory", "inventory.reservation", "inventory.stock_shards"}
    assert "No module named 'inventory'" in results["main"]["error"]


def test_a_package_left_out_of_the_install_is_found(tmp_path: Path) -> None:
    """The check itself: eventkit installed with its package list written by hand, as it once was."""
    source = copy_as_built(EVENTKIT_SOURCE, tmp_path / "eventkit-source")
    pyproject = source / "pyproject.toml"
    text = pyproject.read_text()
    start = text.index("[tool.setuptools.packages.find]")
    pyproject.write_text(text[:start] + '[tool.setuptools]\npackages = ["eventkit"]\n')
    venv = Venv(tmp_path / "venv")
    venv.pip_install(str(source))

    results = venv.import_all(["eventkit.consumer", "eventkit.catalog", "eventkit.catalog._base"], cwd=tmp_path)

    # The consumer imports the catalog on first use, not at import; every module of the left-out package fails.
    assert set(_errors(results)) == {"eventkit.catalog", "eventkit.catalog._base"}
    assert "No module named 'eventkit.catalog'" in results["eventkit.catalog._base"]["error"]
