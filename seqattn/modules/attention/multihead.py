"""Multi-head scaled dot-product attention (Vaswani et al. 2017, sec. 3.2).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V                                  (eq. 1)
    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,  head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)

`precompute` applies W^K and W^V to the memory once (per sentence for cross-attention, per new
position for a self-attention cache) and returns keys and values split into heads [B, h, S, d_k].
The weights are computed explicitly when asked (`need_weights`) and for a single query position (a
search step: there torch's fused CPU kernel is 1.2-2.5x slower than the two matmuls in fp32 and
4-5x slower in bf16, `benchmarks/README.md`), and in training with attention dropout on a CPU:
there torch's fused kernel takes no dropout and falls back to the same matmuls, in float32 under
bf16, with torch's serial Bernoulli draws, where `seqattn.modules.dropout` draws four elements at
a time. Otherwise the fused `scaled_dot_product_attention` kernel runs. A search step's two
matmuls run in float32 even under autocast: in bf16 on a CPU each new shape (rows x cached
positions, new at every step) builds and keeps a oneDNN kernel of about 1 MiB, which made bf16 beam
search peak 600 MiB above fp32, at no gain in speed. alpha is None unless asked for.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.modules.attention.base import Attention
from seqattn.modules.dropout import dropout


class MultiHeadAttention(Attention):
    """h heads of size d_k = d_model / h; alpha reports head `alpha_head` (-1: the average over heads)."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0, alpha_head: int = -1) -> None:
        super().__init__()
        self.h, self.d_k = heads, d_model // heads
        self.dropout, self.alpha_head = dropout, alpha_head
        self.W_Q = nn.Linear(d_model, d_model)
        self.W_K = nn.Linear(d_model, d_model)
        self.W_V = nn.Linear(d_model, d_model)
        self.W_O = nn.Linear(d_model, d_model)
        self.register_module("W_QKV", None)  # [W^Q; W^K; W^V] once fused for decoding (fuse_projections)

    def split_heads(self, x: Tensor) -> Tensor:
        """[B, T, d_model] -> [B, h, T, d_k]."""
        return x.unflatten(-1, (self.h, self.d_k)).transpose(1, 2)

    def precompute(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """keys, values [B, S, d_model] -> K W^K, V W^V split into heads, [B, h, S, d_k] each."""
        return self.split_heads(self.W_K(keys)), self.split_heads(self.W_V(values))

    def fuse_projections(self) -> None:
        """For decoding: W^Q, W^K and W^V stacked into one layer W_QKV [3 d_model, d_model], with which
        `project` maps a self-attention's one input in one matmul instead of three (int8 decoding
        quantises that input once; over a beam-5 step of 64 sentences, 320 rows of d_model 256, on 2
        threads of an AVX-512 VNNI CPU: 222-225 against 351-460 us, benchmarks/step_ops.py). The three layers stay, for attention over another input."""
        layers = (self.W_Q, self.W_K, self.W_V)
        fused = nn.Linear(self.W_Q.in_features, 3 * self.W_Q.out_features, device=self.W_Q.weight.device,
                          dtype=self.W_Q.weight.dtype)
        with torch.no_grad():
            fused.weight.copy_(torch.cat([layer.weight for layer in layers]))
            fused.bias.copy_(torch.cat([layer.bias for layer in layers]))
        self.W_QKV = fused

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Self-attention's input x [B, T, d_model] -> Q W^Q, K W^K, V W^V split into heads [B, h, T, d_k] each."""
        if self.W_QKV is None:
            return self.queries(x), *self.precompute(x, x)
        qkv = self.W_QKV(x).unflatten(-1, (3 * self.h, self.d_k)).transpose(1, 2)  # [B, 3h, T, d_k]
        return qkv[:, : self.h], qkv[:, self.h : 2 * self.h], qkv[:, 2 * self.h :]

    def queries(self, query: Tensor) -> Tensor:
        """query [B, T, d_model] -> Q W^Q split into heads [B, h, T, d_k]."""
        return self.split_heads(self.W_Q(query))

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """query [B, T, d_model], keys [B, h, S, d_k] -> e = Q W^Q K^T / sqrt(d_k) per head [B, h, T, S]."""
        return self.energies(self.queries(query), keys)

    def energies(self, queries: Tensor, keys: Tensor) -> Tensor:
        """queries [B, h, T, d_k] (projected), keys [B, h, S, d_k] -> Q K^T / sqrt(d_k) [B, h, T, S]."""
        return queries @ keys.transpose(-2, -1) / math.sqrt(self.d_k)

    def attend(self, queries: Tensor, keys: Tensor, values: Tensor, m: Tensor | None, p: float) -> tuple[Tensor, Tensor]:
        """Eq. 1 with explicit weights: queries [B, h, T, d_k], keys, values [B, h, S, d_k], m [B, 1, T | 1, S]
        -> heads [B, h, T, d_k], weights [B, h, T, S] (before dropout)."""
        e = self.energies(queries, keys)  # [B, h, T, S]
        weights = (e if m is None else e.masked_fill(~m, float("-inf"))).softmax(dim=-1)
        return dropout(weights, p, self.training) @ values, weights

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None, t: Tensor | None = None,
        *, need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """query [B, d_model] or [B, T, d_model]; keys, values [B, h, S, d_k] (precomputed; for one query
        position also [n, h, S, d_k], shared by B / n consecutive queries each, as a SentenceMemory is);
        mask [B | n, S] or [B | 1, T, S] (True = attend; None: everywhere); t unused (positions are in the embeddings)
        -> context [B, (T,) d_model], alpha [B, (T,) S] (the pre-dropout weights, None unless `need_weights`)."""
        one_step = query.dim() == 2
        q = query.unsqueeze(1) if one_step else query  # [B, T, d_model]
        context, alpha = self.attend_queries(self.queries(q), keys, values, mask, need_weights=need_weights)
        if one_step:
            return context.squeeze(1), None if alpha is None else alpha.squeeze(1)
        return context, alpha

    def attend_queries(
        self, queries: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None, *, need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """`forward` from projected queries [B, h, T, d_k] (as `queries` or `project` return them)
        -> context [B, T, d_model], alpha [B, T, S] or None."""
        m = None if mask is None else (mask.unsqueeze(1) if mask.dim() == 2 else mask).unsqueeze(1)  # [B, 1, T, S]
        p, alpha = (self.dropout if self.training else 0.0), None
        if queries.size(2) == 1:  # a search step: float32 matmuls (module docstring)
            n = keys.size(0)  # n < B: g = B / n hypotheses share each row of keys and values
            folded = queries.transpose(1, 2).reshape(n, -1, self.h, self.d_k).transpose(1, 2)  # [n, h, g, d_k]
            with torch.autocast(queries.device.type, enabled=False):
                heads, weights = self.attend(folded.float(), keys.float(), values.float(), m, p)  # [n, h, g, *]
            heads = heads.transpose(1, 2).flatten(0, 1).unsqueeze(2)  # [B, h, 1, d_k]
            if need_weights:
                weights = weights.transpose(1, 2).flatten(0, 1).unsqueeze(2)  # [B, h, 1, S]
        elif need_weights or (p > 0.0 and queries.device.type == "cpu"):  # the fused kernel's dropout: module docstring
            heads, weights = self.attend(queries, keys, values, m, p)
        else:
            heads = F.scaled_dot_product_attention(queries, keys, values, attn_mask=m, dropout_p=p)  # [B, h, T, d_k]
        if need_weights:
            alpha = weights.mean(dim=1) if self.alpha_head < 0 else weights[:, self.alpha_head]  # [B, T, S]
        return self.W_O(heads.transpose(1, 2).flatten(2)), alpha  # Concat(head_1..head_h) W^O [B, T, d_model]
