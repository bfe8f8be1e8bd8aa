"""console: the operator's pages (target ``app``): the topology with its health, the dead letters and failures
with their replay and discard buttons, and the images: upload a photo, see its renditions (docs/console.md).

Private: only the operators named in Terraform (``var.console_invokers``) may invoke it. The buttons run the same
code as ``python -m dlq`` (``eventkit.failure_records``, ``eventkit.replay``).
"""

from __future__ import annotations

from typing import Any

from console.images_pages import ImagePages
from console.routes import Console
from eventkit import Service

# The buckets: uploads are written into "uploads", renditions read from "renditions" (images pages).
service = Service("console", buckets=["uploads", "renditions"])
console = Console(service)
console.images = ImagePages(service)  # now, so a bad IMAGE_MAX_UPLOAD_BYTES stops the start, not the first upload


def app(request: Any) -> Any:
    """functions-framework target of the console service."""
    return console.handle(request)
