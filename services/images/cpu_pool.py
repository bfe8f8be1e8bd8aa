"""The process's threads for image work: Pillow releases the GIL while it resamples and (to a file) encodes.

One pool per process, made on first use and shared by every request, so concurrent uploads never start more than
``threads`` extra threads between them. The images service runs on 2 vCPUs (terraform/topology.tf).
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import lru_cache


def default_threads() -> int:
    """The CPUs this process may run on, at most 4 (more strips than that gain little on photo sizes)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cpus))


@lru_cache(maxsize=8)
def pool(threads: int) -> Executor:
    return ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="images-cpu")
