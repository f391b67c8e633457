"""The attention interface shared by every mechanism (additive, Luong, multi-head, key-value memory).

    context, alpha = attention(query, keys, values, mask)

`keys` are what `precompute(keys)` returned: a mechanism that projects the source annotations
(e.g. U h_j in additive attention) does it once per sentence there, not at every decoder step.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn


class Attention(nn.Module, ABC):
    def precompute(self, keys: Tensor) -> Tensor:
        """keys: [B, S, Dk] raw annotations -> the form `forward` takes (identity by default)."""
        return keys

    @abstractmethod
    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """query: [B, Dq], keys: [B, S, *] (precomputed) -> energies e: [B, S]."""

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """alpha = softmax(e) over valid positions; context = sum_j alpha_j values_j.

        query [B, Dq], keys [B, S, *], values [B, S, Dv], mask [B, S] (True = attend)
        -> context [B, Dv], alpha [B, S].
        """
        e = self.score(query, keys).masked_fill(~mask, float("-inf"))  # [B, S]
        alpha = e.softmax(dim=-1)  # [B, S]
        context = (alpha.unsqueeze(1) @ values).squeeze(1)  # [B, Dv]
        return context, alpha
