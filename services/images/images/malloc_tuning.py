"""Keep freed image memory in the process instead of handing it back to the OS after every conversion.

glibc returns large freed blocks to the kernel (``mmap`` above a threshold, heap trimming above another); the next
conversion then takes a page fault for every 4 KiB it touches — ~10,000 faults and 10–15 % of the time for a
24 MP photo (bench/images.py). Raising both thresholds (mallopt(3)) keeps up to one conversion's working set
allocated between requests: blocks up to 32 MiB (glibc's maximum mmap threshold; a decoded 12 MP photo is
36 MiB in 16 MiB Pillow blocks) come from the heap, and up to 256 MiB of free heap is kept. Without glibc (macOS,
musl) this does nothing.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 256 * 1024 * 1024


def retain_freed_memory() -> bool:
    """Apply the thresholds once per process; True when the C library took them."""
    try:
        # The process's own symbols (libc among them); find_library would run ldconfig at every start-up.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
