"""stack.services.compile_sources: service code byte-compiled as services/Dockerfile does it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stack.services import compile_sources

pytestmark = pytest.mark.unit


def _topology(*sources: Path) -> Any:
    return SimpleNamespace(services={f"s{i}": SimpleNamespace(source=source) for i, source in enumerate(sources)})


def _compiled(source: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(source)))


def test_every_service_folder_and_extra_folder_is_compiled(tmp_path: Path) -> None:
    service, extra = tmp_path / "service", tmp_path / "bench"
    (service / "pkg").mkdir(parents=True)
    extra.mkdir()
    sources = (service / "main.py", service / "pkg" / "__init__.py", extra / "bare.py")
    for path in sources:
        path.write_text("VALUE = 1\n")

    compile_sources(_topology(service), extra=[extra])

    assert all(_compiled(path).is_file() for path in sources)


def test_eventkit_is_compiled_too(tmp_path: Path) -> None:
    compile_sources(_topology())
    spec = importlib.util.find_spec("eventkit.consumer")
    assert spec is not None and spec.origin is not None
    assert _compiled(Path(spec.origin)).is_file()


def test_a_python_that_may_not_write_bytecode_runs_the_compiled_file(tmp_path: Path) -> None:
    # What the services do under PYTHONDONTWRITEBYTECODE: read the .pyc, never write one.
    (tmp_path / "main.py").write_text("VALUE = 1\n")
    compile_sources(_topology(tmp_path))
    compiled = _compiled(tmp_path / "main.py")
    compiled.write_bytes(compiled.read_bytes().replace(b"VALUE", b"OTHER"))  # the same length: still valid
    result = subprocess.run(
        [sys.executable, "-B", "-c", "import main; print(hasattr(main, 'OTHER'))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "True"


def test_a_file_that_does_not_compile_is_left_to_the_service(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def (:\n")
    (tmp_path / "main.py").write_text("VALUE = 1\n")

    compile_sources(_topology(tmp_path))  # no exception: the service's own start reports the error

    assert not _compiled(tmp_path / "broken.py").exists()
    assert _compiled(tmp_path / "main.py").is_file()
