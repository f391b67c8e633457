"""Keep freed CPU memory for reuse instead of handing it back to the system after every batch.

glibc's malloc serves every block above its mmap threshold (at most 32 MB) with a fresh mmap and
unmaps it when it is freed, so the float32 [tokens, V] logits of each training batch, their
log-probabilities and gradients (131 MB each for 4096 tokens and 8k pieces) are page-faulted and
zeroed anew on every update. `keep_freed_memory` makes malloc take such blocks from its heap and
keep up to 2 GB of freed heap (mallopt M_MMAP_MAX = 0, M_TRIM_THRESHOLD = 2**31 - 1). Elsewhere
than glibc it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameters, <malloc.h>


def keep_freed_memory() -> bool:
    """Set malloc to reuse freed memory for the rest of the process -> True if glibc took it."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
