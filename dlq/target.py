"""Which project the CLI works on: the local stack (emulators from ``<state-dir>/stack.json``) or a real one.

The Google client libraries pick emulators up from ``*_EMULATOR_HOST`` variables, so this module sets them for a
local stack, and REMOVES them for ``--project``: a stray variable in the operator's shell must never send a
production replay to an emulator (or the reverse).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from stack.state import read_info

EMULATOR_VARIABLES = ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")


class TargetError(Exception):
    """The CLI cannot tell (or reach) what to work on; the message says what to pass."""


@dataclass(frozen=True)
class Target:
    project: str
    description: str  # for messages: "local stack in .local" / "project p"


def choose_target(project: str | None, state_dir: Path, environ: MutableMapping[str, str] | None = None) -> Target:
    """Point this process's clients at the chosen target (call before any client is created)."""
    env = os.environ if environ is None else environ
    if project:
        for name in EMULATOR_VARIABLES:
            env.pop(name, None)
        env["GOOGLE_CLOUD_PROJECT"] = project
        return Target(project=project, description=f"project {project}")
    info = read_info(state_dir)
    if info is None:
        raise TargetError(
            f"no local stack recorded in {state_dir} (stack.json); start one with `make up DETACH=1`, "
            "pass --state-dir, or pass --project P to work on a Google Cloud project"
        )
    env.update(
        PUBSUB_EMULATOR_HOST=info.emulators["pubsub"],
        FIRESTORE_EMULATOR_HOST=info.emulators["firestore"],
        GOOGLE_CLOUD_PROJECT=info.project,
    )
    return Target(project=info.project, description=f"local stack in {state_dir}")
