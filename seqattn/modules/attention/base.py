"""The attention interface shared by every mechanism (additive, Luong global and local, multi-head).

    context, alpha = attention(query, keys, values, mask, t)

`keys` and `values` are what `precompute(keys, values)` returned: a mechanism that projects the
memory (U_a h_j in additive attention, W^K and W^V in multi-head attention) does it once per
sentence there, not at every decoder step. A query may be one step [B, Dq] or many [B, T, Dq].
`t` is the decoder position of each query, [B] or [B, T]: every caller passes it and every
mechanism takes it; only position-aware ones read it (local-m centres its window at p_t = t).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn


class Attention(nn.Module, ABC):
    def precompute(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """keys [B, S, Dk], values [B, S, Dv] -> the forms `forward` takes (unchanged by default)."""
        return keys, values

    @abstractmethod
    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """query [B, T, Dq], keys [B, S, *] (precomputed) -> energies e [B, T, S]."""

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor, t: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """alpha = softmax(e) over the positions `mask` allows; context = sum_j alpha_j values_j.

        query [B, Dq] or [B, T, Dq]; keys [B, S, *]; values [B, S, Dv]; mask [B, S] or [B, T, S]
        (True = attend); t [B] or [B, T], unused by global attention -> context [B, (T,) Dv],
        alpha [B, (T,) S].
        """
        one_step = query.dim() == 2
        q = query.unsqueeze(1) if one_step else query  # [B, T, Dq]
        m = mask.unsqueeze(1) if mask.dim() == 2 else mask  # [B, 1 or T, S]
        alpha = self.score(q, keys).masked_fill(~m, float("-inf")).softmax(dim=-1)  # [B, T, S]
        context = alpha @ values  # [B, T, Dv]
        return (context.squeeze(1), alpha.squeeze(1)) if one_step else (context, alpha)
