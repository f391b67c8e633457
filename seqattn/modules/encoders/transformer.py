"""Transformer encoder (Vaswani et al. 2017, sec. 3.1-3.3) and the sublayer pieces the decoder shares.

Each layer is self-attention then FFN; each sublayer sits in a residual connection with layer
normalisation, after the sum (post-norm, the paper) or before the sublayer (pre-norm, with a final
LayerNorm on the stack).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.modules.attention.multihead import MultiHeadAttention
from seqattn.modules.dropout import Dropout
from seqattn.modules.positional import PositionalEmbedding


class FeedForward(nn.Module):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2 (eq. 2)."""

    def __init__(self, d_model: int, ffn_dim: int) -> None:
        super().__init__()
        self.W_1 = nn.Linear(d_model, ffn_dim)
        self.W_2 = nn.Linear(ffn_dim, d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.W_2(F.relu(self.W_1(x)))


class Residual(nn.Module):
    """Post-norm: LayerNorm(x + Dropout(Sublayer(x))) (sec. 5.4); pre-norm: x + Dropout(Sublayer(LayerNorm(x))).

    A layer runs its sublayer on `input(x)` and adds the result back with `output(x, y)`.
    """

    def __init__(self, d_model: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)
        self.pre_norm = pre_norm

    def input(self, x: Tensor) -> Tensor:
        return self.norm(x) if self.pre_norm else x

    def output(self, x: Tensor, y: Tensor) -> Tensor:
        x = x + self.dropout(y)
        return x if self.pre_norm else self.norm(x)


class TransformerEncoderLayer(nn.Module):
    """Multi-head self-attention over the source, then FFN."""

    def __init__(
        self, d_model: int, heads: int, ffn_dim: int, dropout: float, attention_dropout: float, pre_norm: bool,
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads, attention_dropout)
        self.ffn = FeedForward(d_model, ffn_dim)
        self.self_res = Residual(d_model, dropout, pre_norm)
        self.ffn_res = Residual(d_model, dropout, pre_norm)

    def forward(self, x: Tensor, src_mask: Tensor) -> Tensor:
        """x [B, S, d_model], src_mask [B, S] -> [B, S, d_model]."""
        h = self.self_res.input(x)
        context, _ = self.self_attn.attend_queries(*self.self_attn.project(h), src_mask, need_weights=False)
        x = self.self_res.output(x, context)
        return self.ffn_res.output(x, self.ffn(self.ffn_res.input(x)))


class TransformerEncoder(nn.Module):
    """N encoder layers over dropout(E x * sqrt(d_model) + PE); padding-invariant through the key mask."""

    def __init__(
        self, vocab_size: int, d_model: int, heads: int, ffn_dim: int, num_layers: int, pad_id: int,
        dropout: float, attention_dropout: float, pre_norm: bool,
    ) -> None:
        super().__init__()
        self.embed = PositionalEmbedding(vocab_size, d_model, pad_id, dropout)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, heads, ffn_dim, dropout, attention_dropout, pre_norm)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model) if pre_norm else nn.Identity()

    def forward(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """src, src_mask: [B, S] -> memory [B, S, d_model]."""
        x = self.embed(src)  # [B, S, d_model]
        for layer in self.layers:
            x = layer(x, src_mask)
        return self.norm(x)
