"""Dropout (Srivastava et al. 2014) with a mask drawn 16 random bits an element, four to a draw.

    dropout(x) = x * m / (1 - p),  m_i ~ Bernoulli(1 - p)

On a CPU torch's `bernoulli_` draws one Mersenne-Twister number per element, serially (except on
Intel CPUs, where MKL draws them): a 4096 x 256 bf16 mask took 7.9-8.6 ms on an AMD EPYC, 14% of a
bf16 Transformer update (`benchmarks/README.md`). Here one 64-bit draw of `random_` gives four
16-bit uniform integers, and an element is kept when its integer is at or above p's share of the
2^16 values: the same dropout with p rounded to a multiple of 2^-16 (0.1 -> 0.100006), its
expectation kept exactly by dividing by 1 - that p. The mask and its 3.5 ms come from torch's
default generator, so the RNG state a checkpoint saves still resumes training exactly. Other
devices keep torch's fused dropout.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LEVELS = 2**16  # values of one 16-bit draw


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> Tensor:
    """A bool mask of `shape`, each element True with probability 1 - round(p * 2^16) / 2^16."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None)  # 64 random bits each
    draws = words.view(torch.int16)[:n].view(shape)  # uniform over -2^15 .. 2^15 - 1
    return draws >= round(p * LEVELS) - LEVELS // 2


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """x [...] with each element zeroed with probability p (rounded to 2^-16 on a CPU) and the rest
    scaled by 1 / (1 - p); x itself outside training or for p = 0."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, True)
    kept = 1.0 - round(p * LEVELS) / LEVELS
    return x * keep_mask(x.shape, p, x.device) * (1.0 / kept)


class Dropout(nn.Module):
    """`dropout` as a module, on in training mode (nn.Dropout's interface)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
