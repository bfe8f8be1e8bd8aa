"""console: the operator's pages (target ``app``): the topology with its health, and the dead letters and failures
with their replay and discard buttons (docs/console.md).

Private: only the operators named in Terraform (``var.console_invokers``) may invoke it. The buttons run the same
code as ``python -m dlq`` (``eventkit.failure_records``, ``eventkit.replay``).
"""

from __future__ import annotations

from typing import Any

from console.routes import Console
from eventkit import Service

console = Console(Service("console"))


def app(request: Any) -> Any:
    """functions-framework target of the console service."""
    return console.handle(request)
