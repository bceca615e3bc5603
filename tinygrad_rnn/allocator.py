"""Keep freed memory in the process, so that a training loop does not fault its pages in every step.

numpy takes its arrays from the C allocator. glibc's malloc hands the top of its heap back to the OS
as soon as more than 128 KB of it is free, and gives arrays above a threshold that it adjusts as it
goes pages of their own, returned on free. A training step allocates and frees the same few
megabytes every time, so by default it pays for those pages again at every step: measured on the
language model's training step (`tinygrad-rnn train`, 60 steps), 80,000 page faults and 10–20 % of
the time, against 5,000 faults with this setting. PyTorch avoids the same cost with its caching
allocator.

`keep_freed_memory()` raises glibc's trim and mmap thresholds (mallopt), which the process keeps for
its lifetime: freed memory stays for the next step instead of returning to the OS, so the resident
size stays at its peak. The commands (`tinygrad-rnn ...`) call it; call it in your own training
script for the same effect. Elsewhere than glibc (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MAX_TRIM_MB = (2**31 - 1) // 2**20  # mallopt takes a C int of bytes: 2047 MB at most


def keep_freed_memory(trim_mb: int = 256, mmap_mb: int = 32) -> bool:
    """Keep up to `trim_mb` MB of freed heap, and take arrays below `mmap_mb` MB from the heap.

    Returns whether the C library took the setting (False where it is not glibc)."""
    numbers = all(isinstance(v, int) and not isinstance(v, bool) for v in (trim_mb, mmap_mb))
    if not numbers or not 0 <= trim_mb <= MAX_TRIM_MB or not 0 < mmap_mb <= 32:
        raise ValueError(
            f"keep_freed_memory: expected trim_mb in 0..{MAX_TRIM_MB} (mallopt takes a C int of bytes) "
            f"and mmap_mb in 1..32 (glibc's limit), got {trim_mb!r} and {mmap_mb!r}"
        )
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    trimmed = mallopt(M_TRIM_THRESHOLD, trim_mb * 2**20)
    mapped = mallopt(M_MMAP_THRESHOLD, mmap_mb * 2**20)
    return bool(trimmed and mapped)
