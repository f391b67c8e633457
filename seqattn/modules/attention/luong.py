"""Luong et al. 2015 scores (eq. 8) for global attention: every source state h̄_s is a candidate.

    dot      score(h_t, h̄_s) = h_t^T h̄_s
    general  score(h_t, h̄_s) = h_t^T W_a h̄_s
    concat   score(h_t, h̄_s) = v_a^T tanh(W_a [h_t; h̄_s])

The query is the current top-layer decoder state h_t (Bahdanau attends from s_{i-1}); the softmax
over the source and the context c_t = sum_s a_t(s) h̄_s are the shared `Attention.forward`.
"""
from __future__ import annotations

from torch import Tensor, nn

from seqattn.modules.attention.additive import AdditiveAttention
from seqattn.modules.attention.base import Attention


class DotAttention(Attention):
    """score(h_t, h̄_s) = h_t^T h̄_s; needs query and key sizes to match."""

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        # query h_t [B, T, D], keys h̄ [B, S, D] -> e [B, T, S]
        return query @ keys.transpose(1, 2)


class GeneralAttention(DotAttention):
    """score(h_t, h̄_s) = h_t^T W_a h̄_s: the dot score against W_a h̄_s, computed once per sentence."""

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.W_a = nn.Linear(key_dim, query_dim, bias=False)

    def precompute(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        return self.W_a(keys), values  # keys W_a h̄_s [B, S, Dq], values h̄_s


class ConcatAttention(AdditiveAttention):
    """score(h_t, h̄_s) = v_a^T tanh(W_a [h_t; h̄_s]).

    Splitting W_a [h_t; h̄_s] = W_a h_t + U_a h̄_s makes it the additive score with h_t as the query
    and the source half U_a h̄_s precomputed once per sentence; as in eq. 8 there is no bias.
    """

    def __init__(self, query_dim: int, key_dim: int, attention_dim: int) -> None:
        super().__init__(query_dim, key_dim, attention_dim)
        self.U_a.register_parameter("bias", None)
