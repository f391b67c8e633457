"""What a process keeps in CPU memory: freed heap for reuse, few compiled kernels (decoding).

glibc's malloc serves every block above its mmap threshold (at most 32 MB) with a fresh mmap and
unmaps it when it is freed, and gives freed memory at the top of its heap back to the system, so the
float32 [tokens, V] logits of each training batch, their log-probabilities and gradients (131 MB each
for 4096 tokens and 8k pieces), and the [rows, V] scores of each beam search step (10 MB for 320
hypotheses), are page-faulted and zeroed anew every time. `keep_freed_memory` makes malloc take such
blocks from its heap and keep up to 2 GB of freed heap (mallopt M_MMAP_MAX = 0, M_TRIM_THRESHOLD =
2**31 - 1); the trainer and `Model.from_checkpoints` set it. Elsewhere than glibc it does nothing.

oneDNN, which runs torch's bf16 matmuls on a CPU, compiles a kernel for every new shape and keeps up
to 1024 of them (its primitive cache, and the cache torch keeps in front of it through ideep). A
search step's shapes change as sentences finish and as sources differ between batches, so decoding
fills those caches with kernels it seldom reuses. `cache_few_kernels` caps both at 32 for the rest of
the process (ONEDNN_PRIMITIVE_CACHE_CAPACITY and LRU_CACHE_CAPACITY, unless already set); they read
their capacity once, so it must run before the first bf16 matmul.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

KERNEL_CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameters, <malloc.h>


def keep_freed_memory() -> bool:
    """Set malloc to reuse freed memory for the rest of the process -> True if glibc took it."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def cache_few_kernels(capacity: int = 32) -> None:
    """Cap oneDNN's kernel caches at `capacity` for the rest of the process (a value the user already
    set in the environment is kept); call before the first bf16 matmul."""
    for name in KERNEL_CACHE_VARIABLES:
        os.environ.setdefault(name, str(capacity))
