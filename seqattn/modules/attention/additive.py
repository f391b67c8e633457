"""Additive attention (Bahdanau et al. 2015, eq. 6 and appendix A.1.2)."""
from __future__ import annotations

from torch import Tensor, nn

from seqattn.modules.attention.base import Attention


class AdditiveAttention(Attention):
    """e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)."""

    def __init__(self, query_dim: int, key_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.W_a = nn.Linear(query_dim, attention_dim, bias=False)
        self.U_a = nn.Linear(key_dim, attention_dim)
        self.v_a = nn.Linear(attention_dim, 1, bias=False)

    def precompute(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        return self.U_a(keys), values  # U_a h_j [B, S, A] once per sentence

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        # query [B, T, Dq], keys = U_a h [B, S, A] -> e [B, T, S]
        return self.v_a((self.W_a(query).unsqueeze(2) + keys.unsqueeze(1)).tanh()).squeeze(-1)
