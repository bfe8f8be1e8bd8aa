"""The process's threads for image work: Pillow releases the GIL while it resamples and (to a file) encodes.

One pool per process, made on first use (sized by that caller: the service's ``IMAGE_THREADS``) and shared by every
request and every step, so concurrent uploads never start more than that many extra threads between them. The
images service runs on 2 vCPUs (terraform/topology.tf).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Executor, ThreadPoolExecutor

_pool: Executor | None = None
_pool_guard = threading.Lock()


def default_threads() -> int:
    """The CPUs this process may run on, at most 4 (more strips than that gain little on photo sizes)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cpus))


def pool(threads: int) -> Executor:
    """The process's pool; the first call's ``threads`` sets its size (work beyond it queues, never more threads)."""
    global _pool
    with _pool_guard:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="images-cpu")
        return _pool
