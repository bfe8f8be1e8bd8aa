"""The local stack for machines without Docker: emulators, bootstrap and services as processes.

``python -m stack up|down|status`` on the command line; :class:`Stack` from Python (the test suite).
"""

from __future__ import annotations

import importlib
from typing import Any

# Exported lazily: `import stack.topology` (unit tests, Terraform checks) must not pull in the Google
# client libraries, and `python -m stack.bootstrap` must not find itself imported before it runs.
_EXPORTS = {
    "ProcessStatus": "stack.runner",
    "Stack": "stack.runner",
    "StackError": "stack.errors",
    "StackInfo": "stack.state",
    "Topology": "stack.topology",
    "TopologyError": "stack.errors",
    "load_topology": "stack.topology",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'stack' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
