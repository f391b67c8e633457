"""Local attention (Luong et al. 2015, sec. 3.2): attend to the window [p_t - D, p_t + D] of source
positions around an aligned position p_t, favouring those near p_t with a Gaussian (eq. 10):

    a_t(s) = align(h_t, h̄_s) exp(-(s - p_t)^2 / (2 σ^2)),   σ = D / 2

align() is the softmax of any score (dot, general, concat) over the real source positions inside
the window; everything outside gets exactly zero weight. As in the paper the weights are not
renormalised after the Gaussian, so they sum to at most 1.

The aligned position p_t (source positions s = 0 .. S-1):
    local-m  p_t = t, the decoder step index, which every caller passes as `t` (base.Attention);
    local-p  p_t = S · sigmoid(v_p^T tanh(W_p h_t)) (eq. 9), predicted from the query h_t, with S
             the sentence's real source length (from the mask); differentiable through the Gaussian.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from seqattn.modules.attention.base import Attention


class LocalAttention(Attention):
    """Windowed, Gaussian-weighted `align` around p_t (local-m, or local-p when `predictive`)."""

    def __init__(self, align: Attention, window: int, query_dim: int, predictive: bool) -> None:
        super().__init__()
        self.align = align
        self.D = window
        self.W_p = nn.Linear(query_dim, query_dim, bias=False) if predictive else None
        self.v_p = nn.Linear(query_dim, 1, bias=False) if predictive else None

    def precompute(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        return self.align.precompute(keys, values)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return self.align.score(query, keys)

    def position(self, query: Tensor, t: Tensor | None, length: Tensor) -> Tensor:
        """p_t [B, T] from query h_t [B, T, Dq], step indices t [B, T] and source lengths S [B, 1 or T].

        local-m stays on the last source word once t runs past it (a window beyond the sentence
        would hold no word); local-p lies in [0, S] by construction.
        """
        if self.W_p is None:
            if t is None:
                raise ValueError("local-m attention needs the decoder step index t")
            return torch.minimum(t.to(query.dtype), length - 1)
        return length * self.v_p(self.W_p(query).tanh()).squeeze(-1).sigmoid()  # eq. 9

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor, t: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """query [B, Dq] or [B, T, Dq]; keys, values as precomputed [B, S, *]; mask [B, S] or
        [B, T, S] (True = real word); t: the decoder step of each query, [B] or [B, T] (read by
        local-m only) -> context c_t [B, (T,) Dv], weights a_t [B, (T,) S].
        """
        one_step = query.dim() == 2
        q = query.unsqueeze(1) if one_step else query  # [B, T, Dq]
        m = mask.unsqueeze(1) if mask.dim() == 2 else mask  # [B, 1 or T, S]
        steps = None if t is None else t.view(q.shape[:2])  # [B, T]
        p = self.position(q, steps, m.sum(-1).to(q.dtype))  # p_t [B, T]
        s = torch.arange(m.size(-1), device=q.device, dtype=q.dtype)  # source positions [S]
        distance = s - p.unsqueeze(-1)  # s - p_t [B, T, S]
        window = m & distance.abs().le(self.D)  # [B, T, S]
        align = self.score(q, keys).masked_fill(~window, float("-inf")).softmax(dim=-1)  # [B, T, S]
        sigma = self.D / 2
        alpha = align * torch.exp(-distance.square() / (2 * sigma**2))  # eq. 10, [B, T, S]
        context = alpha @ values  # [B, T, Dv]
        return (context.squeeze(1), alpha.squeeze(1)) if one_step else (context, alpha)
