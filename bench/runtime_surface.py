"""The runtime's size and surface: lines of eventkit and of each service, and the eventkit modules each imports.

    .venv/bin/python bench/runtime_surface.py [--root DIR ...]

Each ``--root`` is a checkout (default: this one); several side by side compare them (e.g. a ``git worktree`` of
an older commit). Lines are non-blank lines of ``.py`` files; imports are read from the source (``ast``), every
``import eventkit.x`` / ``from eventkit.x import`` / ``from eventkit import y`` (the package itself counts as
``eventkit``). Figures only, never a test.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def lines(folder: Path) -> int:
    return sum(
        sum(1 for line in path.read_text().splitlines() if line.strip())
        for path in folder.rglob("*.py")
        if "__pycache__" not in path.parts and ".egg-info" not in str(path)
    )


def eventkit_modules(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "eventkit" or node.module.startswith("eventkit."):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name == "eventkit" or a.name.startswith("eventkit.")}
    return found


def survey(root: Path) -> dict[str, tuple[int, set[str]]]:
    services = root / "services"
    rows = {"eventkit": (lines(services / "eventkit" / "eventkit"), set())}
    for folder in sorted(p for p in services.iterdir() if p.is_dir() and p.name != "eventkit"):
        if any(folder.rglob("*.py")):
            rows[folder.name] = (lines(folder), eventkit_modules(folder))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, action="append", help="a checkout (repeatable; default: this one)")
    roots = parser.parse_args().root or [REPO]
    surveys = {root: survey(root) for root in roots}
    names = sorted({name for rows in surveys.values() for name in rows}, key=lambda n: (n != "eventkit", n))
    header = " | ".join(f"lines ({root.name}) | eventkit modules ({root.name})" for root in roots)
    print(f"| folder | {header} |")
    print("| --- |" + " ---: | --- |" * len(roots))
    every: dict[Path, set[str]] = {root: set() for root in roots}
    for name in names:
        cells = []
        for root in roots:
            count, modules = surveys[root].get(name, (0, set()))
            every[root] |= modules
            shown = ", ".join(sorted(m.removeprefix("eventkit.") or "eventkit" for m in modules)) or "-"
            cells.append(f"{count} | {len(modules)}: {shown}" if name != "eventkit" else f"{count} | -")
        print(f"| {name} | " + " | ".join(cells) + " |")
    for root in roots:
        names = ", ".join(sorted(every[root]))
        print(f"\n{root}: services import {len(every[root])} distinct eventkit modules: {names}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
