"""keep_freed_memory: a large tensor comes from malloc's heap instead of a fresh mmap, also once a model is
loaded for decoding; cache_few_kernels:
new bf16 shapes no longer add a kernel each to the peak memory."""
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from seqattn.allocator import KERNEL_CACHE_VARIABLES, cache_few_kernels

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
elif sys.argv[1] == "load":  # a model loaded for decoding
    import seqattn
    seqattn.load(sys.argv[2])
before = libc.mallinfo2().hblkhd
x = torch.ones(64 * 2**20, dtype=torch.uint8)  # 64 MB, above glibc's largest mmap threshold
print(libc.mallinfo2().hblkhd - before)  # bytes in mmapped blocks gained
"""


def mmapped_bytes(*args: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    return int(out.stdout)


GLIBC, VERSION = platform.libc_ver()


@pytest.mark.skipif(GLIBC != "glibc" or tuple(map(int, VERSION.split("."))) < (2, 33), reason="mallinfo2 is glibc >= 2.33's")
def test_large_blocks_leave_mmap_for_the_heap():
    assert mmapped_bytes("default") >= 64 * 2**20  # the default: a fresh mapping, unmapped when freed
    assert mmapped_bytes("keep") == 0


@pytest.mark.skipif(GLIBC != "glibc" or tuple(map(int, VERSION.split("."))) < (2, 33), reason="mallinfo2 is glibc >= 2.33's")
def test_a_model_loaded_for_decoding_keeps_freed_memory(tiny_transformer: Path):
    assert mmapped_bytes("load", str(tiny_transformer)) == 0


KERNEL_PROBE = """
import sys
import torch
from seqattn.allocator import cache_few_kernels

def peak_mib():  # VmHWM: this process's own peak (ru_maxrss starts from the parent's RSS at the fork)
    line = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024

if sys.argv[1] == "few":
    cache_few_kernels(8)
torch.set_num_threads(1)
w = torch.randn(8000, 256).to(torch.bfloat16)
torch.nn.functional.linear(torch.randn(1, 256).to(torch.bfloat16), w)
before = peak_mib()
for rows in range(2, 322):  # a new shape each time, as search steps over fewer and fewer hypotheses
    torch.nn.functional.linear(torch.randn(rows, 256).to(torch.bfloat16), w)
print(peak_mib() - before)  # MiB of peak memory gained
"""


def kernel_mib(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_CACHE_VARIABLES}
    out = subprocess.run([sys.executable, "-c", KERNEL_PROBE, mode], capture_output=True, text=True, check=True, env=env)
    return int(out.stdout)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak from Linux's /proc")
def test_few_kernels_cap_the_memory_of_new_bf16_shapes():
    default = kernel_mib("default")
    if default < 100:
        pytest.skip(f"this CPU's bf16 matmuls kept {default} MiB for 320 shapes: no per-shape kernels to cap")
    assert kernel_mib("few") < default / 2


def test_few_kernels_keep_the_users_setting(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(os, "environ", {"LRU_CACHE_CAPACITY": "7"})  # a stand-in: the real one stays untouched
    cache_few_kernels(16)
    assert os.environ["LRU_CACHE_CAPACITY"] == "7" and os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "16"
