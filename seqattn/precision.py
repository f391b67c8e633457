"""Mixed precision: the autocast dtype a precision option names, and the autocast context for it."""
from __future__ import annotations

import torch

from seqattn.errors import SeqattnError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def autocast_dtype(precision: str, device: torch.device, option: str = "train.precision") -> torch.dtype | None:
    """The autocast dtype for a precision option (auto, fp32, fp16, bf16), None for full fp32."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else None
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise SeqattnError(f"{option}=fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
        return torch.float16
    raise SeqattnError(f"{option}: {precision!r} is not {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}")


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """Autocast to `dtype` on `device`; disabled (full fp32) for None."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
