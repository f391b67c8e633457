"""keep_freed_memory: a large tensor comes from malloc's heap instead of a fresh mmap."""
import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, ctypes.util, sys
import torch
from seqattn.allocator import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "keep":
    assert keep_freed_memory()
before = libc.mallinfo2().hblkhd
x = torch.ones(64 * 2**20, dtype=torch.uint8)  # 64 MB, above glibc's largest mmap threshold
print(libc.mallinfo2().hblkhd - before)  # bytes in mmapped blocks gained
"""


def mmapped_bytes(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


GLIBC, VERSION = platform.libc_ver()


@pytest.mark.skipif(GLIBC != "glibc" or tuple(map(int, VERSION.split("."))) < (2, 33), reason="mallinfo2 is glibc >= 2.33's")
def test_large_blocks_leave_mmap_for_the_heap():
    assert mmapped_bytes("default") >= 64 * 2**20  # the default: a fresh mapping, unmapped when freed
    assert mmapped_bytes("keep") == 0
