"""Shared helpers of the offline Terraform checks: parse the .tf files (python-hcl2), check them against the provider
schema excerpt, evaluate expressions with `terraform console` (no provider needed), run checkov."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "terraform"
SCHEMA_PATH = TF_DIR / "schema" / "google-provider-schema.json"
CHECKOV_INSTALLER = TF_DIR / "checks" / "install_checkov.sh"
CHECKOV_POLICIES = TF_DIR / "checkov"

# Terraform meta-arguments: allowed in every resource / data block, never in the provider schema.
META_ARGUMENTS = frozenset({"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"})


def terraform_bin() -> str:
    found = shutil.which("terraform")
    if not found:
        raise AssertionError("terraform is not on PATH: the offline Terraform checks need Terraform >= 1.5")
    return found


def terraform_env(tmp: Path) -> dict[str, str]:
    """Environment for terraform: an empty CLI config (no warning about ~/.terraformrc), no checkpoint calls."""
    config = tmp / "empty.tfrc"
    config.touch()
    return {**os.environ, "TF_CLI_CONFIG_FILE": str(config), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}


def copy_config(dest: Path) -> Path:
    """A copy of terraform/ plus ../topology.yaml beside it (the relative path the config reads), for mutations."""
    shutil.copytree(TF_DIR, dest / "terraform", ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    shutil.copy(REPO / "topology.yaml", dest / "topology.yaml")
    return dest / "terraform"


# --- parsing ---------------------------------------------------------------------------------------------------


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals quoted ('"b"') and expressions as '${...}'; literals lose their quotes."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def is_block(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get("__is_block__") for v in value)


def expression(value: Any) -> str:
    """The HCL expression text of an attribute value ('${local.x}' -> 'local.x')."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    return json.dumps(unquote(value))


@dataclass(frozen=True)
class Block:
    kind: str  # "resource" | "data"
    type: str
    name: str
    body: dict[str, Any]
    file: str

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}" if self.kind == "resource" else f"data.{self.type}.{self.name}"


def parse_dir(tf_dir: Path = TF_DIR) -> dict[str, dict[str, Any]]:
    """Every .tf file of a directory (recursively), parsed."""
    parsed = {}
    for path in sorted(tf_dir.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        with path.open(encoding="utf-8") as handle:
            parsed[str(path.relative_to(tf_dir))] = hcl2.load(handle)
    return parsed


def blocks(parsed: Mapping[str, dict[str, Any]], kind: str | None = None) -> Iterator[Block]:
    for file, doc in parsed.items():
        for block_kind in ("resource", "data"):
            if kind and block_kind != kind:
                continue
            for entry in doc.get(block_kind, []):
                for type_, named in entry.items():
                    for name, body in named.items():
                        yield Block(block_kind, unquote(type_), unquote(name), body, file)


def top_level(parsed: Mapping[str, dict[str, Any]], key: str) -> Iterator[dict[str, Any]]:
    for doc in parsed.values():
        yield from doc.get(key, [])


def named(parsed: Mapping[str, dict[str, Any]], key: str) -> dict[str, Any]:
    """Labelled top-level blocks (variable, output) or locals entries: unquoted name -> body / value."""
    return {unquote(k): v for entry in top_level(parsed, key) for k, v in entry.items() if not k.startswith("__")}


def locals_defined(parsed: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    """local name -> file that defines it."""
    found = {}
    for file, doc in parsed.items():
        for entry in doc.get("locals", []):
            for name in entry:
                if not name.startswith("__"):
                    found[name] = file
    return found


def sub_blocks(body: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """Static blocks called ``name`` plus the content of ``dynamic "name"`` blocks."""
    found = [b for b in body.get(name, []) if isinstance(b, dict)] if is_block(body.get(name)) else []
    for dynamic in body.get("dynamic", []):
        for label, spec in dynamic.items():
            if unquote(label) == name:
                found.extend(spec.get("content", []))
    return found


# --- schema check ----------------------------------------------------------------------------------------------


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class SchemaReport:
    problems: list[str]
    not_in_excerpt: list[str]
    checked: int


def check_schema(parsed: Mapping[str, dict[str, Any]], schema: Mapping[str, Any]) -> SchemaReport:
    problems: list[str] = []
    missing: list[str] = []
    checked = 0
    for block in blocks(parsed):
        section = schema["resources" if block.kind == "resource" else "data_sources"]
        node = section.get(block.type)
        if node is None:
            missing.append(
                f"{block.address} ({block.file}): {block.kind} type {block.type} is not in the schema excerpt"
            )
            continue
        checked += 1
        _check_body(block.address, block.body, node, problems, top=True)
    return SchemaReport(problems, missing, checked)


def _check_body(
    where: str, body: Mapping[str, Any], node: Mapping[str, Any], problems: list[str], *, top: bool
) -> None:
    arguments = node.get("arguments", {})
    nested = node.get("blocks", {})
    attributes = set(node.get("attributes", []))
    present_blocks: set[str] = set()
    for key, value in body.items():
        if key.startswith("__") or (top and key in META_ARGUMENTS):  # python-hcl2 metadata (__is_block__, __comments__)
            continue
        if key == "dynamic":
            for dynamic in value:
                for label, spec in dynamic.items():
                    name = unquote(label)
                    present_blocks.add(name)
                    if name not in nested:
                        problems.append(f"{where}: dynamic block {name!r} is not a block of this type")
                        continue
                    for content in spec.get("content", []):
                        _check_body(f"{where}.{name}", content, nested[name], problems, top=False)
            continue
        if is_block(value):
            present_blocks.add(key)
            if key not in nested:
                hint = " (an argument, not a block)" if key in arguments else ""
                problems.append(f"{where}: unknown block {key!r}{hint}")
                continue
            if nested[key].get("beta"):
                problems.append(f"{where}: block {key!r} exists only in google-beta")
            for item in value:
                _check_body(f"{where}.{key}", item, nested[key], problems, top=False)
            continue
        if key in arguments:
            if arguments[key].get("beta"):
                problems.append(f"{where}: argument {key!r} exists only in google-beta")
        elif key in attributes:
            problems.append(f"{where}: {key!r} is an output-only attribute and cannot be set")
        elif key in nested:
            problems.append(f"{where}: {key!r} is a block; written as an argument")
        else:
            problems.append(f"{where}: unknown argument {key!r}")
    for name, spec in arguments.items():
        if spec.get("required") and name not in body:
            problems.append(f"{where}: required argument {name!r} is missing")
    for name, spec in nested.items():
        if spec.get("required") and name not in present_blocks:
            problems.append(f"{where}: required block {name!r} is missing")


# --- terraform console ------------------------------------------------------------------------------------------


def console_eval(
    work: Path,
    expressions: Mapping[str, str],
    *,
    topology_text: str,
    variables: Mapping[str, Any],
    tf_files: tuple[str, ...] = ("variables.tf", "topology.tf"),
) -> dict[str, Any]:
    """Evaluate expressions with real Terraform over the given topology YAML: the variables and the topology locals
    only (they need no provider, so no `terraform init`). Returns name -> decoded JSON value."""
    config = work / "terraform"
    config.mkdir(parents=True, exist_ok=True)
    for name in tf_files:
        shutil.copy(TF_DIR / name, config / name)
    (work / "topology.yaml").write_text(topology_text, encoding="utf-8")
    var_file = config / "test.tfvars.json"
    var_file.write_text(json.dumps(dict(variables)), encoding="utf-8")
    body = ", ".join(f"{json.dumps(key)} = {expr}" for key, expr in expressions.items())
    result = subprocess.run(
        [terraform_bin(), "console", f"-var-file={var_file.name}"],
        input=f"jsonencode({{{body}}})\n",
        capture_output=True,
        text=True,
        cwd=config,
        env=terraform_env(work),
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"terraform console failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(json.loads(result.stdout.strip()))


# --- checkov ---------------------------------------------------------------------------------------------------


def install_checkov() -> Path:
    result = subprocess.run(
        ["bash", str(CHECKOV_INSTALLER)], capture_output=True, text=True, timeout=900, check=False, cwd=REPO
    )
    if result.returncode != 0:
        raise AssertionError(f"installing checkov failed:\n{result.stdout}\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def run_checkov(checkov: Path, tf_dir: Path) -> dict[str, Any]:
    """checkov over a Terraform directory with the custom policies, offline; returns its JSON results."""
    result = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(tf_dir),
            "--framework",
            "terraform",
            "--skip-download",
            "--compact",
            "--external-checks-dir",
            str(CHECKOV_POLICIES),
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    if result.returncode not in (0, 1):
        raise AssertionError(f"checkov could not run (exit {result.returncode}):\n{result.stderr[-4000:]}")
    report = json.loads(result.stdout)
    if isinstance(report, list):  # one entry per framework
        report = next(r for r in report if r.get("check_type") == "terraform")
    return report
