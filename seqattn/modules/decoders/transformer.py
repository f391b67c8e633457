"""Transformer decoder (Vaswani et al. 2017, sec. 3.1-3.4) with an incremental self-attention cache.

The decoder state (batch-first throughout, so `select_state` reorders it with the beam):

    {"memory": SentenceMemory(mask=src_mask [n, S]),
     "layers": [{"memory": SentenceMemory(k, v: W^K, W^V of the encoder memory [n, h, S, d_k]),
                 "self_k", "self_v": Rows of the self-attention keys, values of the t positions decoded so
                 far [B, h, t, d_k]}
                per layer]}

Teacher forcing runs the whole target in one pass under a causal mask; a search step runs one new
position per hypothesis against the cache and appends its keys and values, applying the beam's
reordering in the same copy (`Rows.extend`). Both are `advance`. The encoder memory stays one row per
sentence (n) under beam search, whose B = nK hypotheses attend to it as K queries a sentence.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from seqattn.state import Rows, SentenceMemory, State
from seqattn.modules.attention.multihead import MultiHeadAttention
from seqattn.modules.encoders.transformer import FeedForward, Residual
from seqattn.modules.positional import PositionalEmbedding


class TransformerDecoderLayer(nn.Module):
    """Masked multi-head self-attention, multi-head attention over the encoder memory, then FFN."""

    def __init__(
        self, d_model: int, heads: int, ffn_dim: int, dropout: float, attention_dropout: float, pre_norm: bool,
        alpha_head: int = -1,
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads, attention_dropout)
        self.cross_attn = MultiHeadAttention(d_model, heads, attention_dropout, alpha_head)
        self.ffn = FeedForward(d_model, ffn_dim)
        self.self_res = Residual(d_model, dropout, pre_norm)
        self.cross_res = Residual(d_model, dropout, pre_norm)
        self.ffn_res = Residual(d_model, dropout, pre_norm)

    def forward(
        self, x: Tensor, cache: dict[str, Rows | SentenceMemory], src_mask: Tensor, self_mask: Tensor | None,
        need_weights: bool,
    ) -> tuple[Tensor, Tensor | None, dict[str, Rows | SentenceMemory]]:
        """x [B, T, d_model]: the T positions after the t cached ones; self_mask [1, T, t + T] (None: T = 1,
        all visible) -> x [B, T, d_model], cross-attention alpha [B, T, S] or None, cache with t + T positions."""
        h = self.self_res.input(x)
        q, k, v = self.self_attn.project(h)  # [B, h, T, d_k]
        k, v = cache["self_k"].extend(k, dim=2), cache["self_v"].extend(v, dim=2)  # [B, h, t + T, d_k]
        x = self.self_res.output(x, self.self_attn.attend_queries(q, k.tensor(), v.tensor(), self_mask, need_weights=False)[0])
        h = self.cross_res.input(x)
        memory = cache["memory"]
        context, alpha = self.cross_attn(h, memory["k"], memory["v"], src_mask, need_weights=need_weights)
        x = self.cross_res.output(x, context)
        x = self.ffn_res.output(x, self.ffn(self.ffn_res.input(x)))
        return x, alpha, {**cache, "self_k": k, "self_v": v}


class TransformerDecoder(nn.Module):
    """N decoder layers over dropout(E y * sqrt(d_model) + PE) and the pre-softmax linear map to the vocabulary.

    alpha is the cross-attention of layer `attention_layer` (-1: last), head `attention_head` (-1: average).
    """

    def __init__(
        self, vocab_size: int, d_model: int, heads: int, ffn_dim: int, num_layers: int, pad_id: int,
        dropout: float, attention_dropout: float, pre_norm: bool, attention_layer: int = -1, attention_head: int = -1,
    ) -> None:
        super().__init__()
        self.embed = PositionalEmbedding(vocab_size, d_model, pad_id, dropout)
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(d_model, heads, ffn_dim, dropout, attention_dropout, pre_norm, attention_head)
            for _ in range(num_layers)
        )
        self.alpha_layer = attention_layer % num_layers
        self.norm = nn.LayerNorm(d_model) if pre_norm else nn.Identity()
        self.output = nn.Linear(d_model, vocab_size)

    def init_state(self, memory: Tensor, src_mask: Tensor) -> State:
        """memory [B, S, d_model], src_mask [B, S] -> state with each layer's memory K, V and an empty cache."""
        B = memory.size(0)
        layers = []
        for layer in self.layers:
            attn = layer.cross_attn
            memory_k, memory_v = attn.precompute(memory, memory)  # [B, h, S, d_k]
            empty = memory_k.new_zeros(B, attn.h, 0, attn.d_k)  # [B, h, 0, d_k]
            layers.append({"memory": SentenceMemory(k=memory_k, v=memory_v), "self_k": Rows(empty), "self_v": Rows(empty)})
        return {"memory": SentenceMemory(mask=src_mask), "layers": layers}

    def advance(self, tokens: Tensor, state: State, need_alpha: bool = True) -> tuple[Tensor, Tensor | None, State]:
        """tokens [B, T]: the next T target inputs -> logits [B, T, V], alpha [B, T, S] or None, state.

        New position i sees the cached positions and new positions j <= i.
        """
        T, t = tokens.size(1), state["layers"][0]["self_k"].shape[2]
        x = self.embed(tokens, start=t)  # positions t .. t + T - 1 [B, T, d_model]
        causal = None if T == 1 else torch.ones(T, t + T, dtype=torch.bool, device=tokens.device).tril(t).unsqueeze(0)
        alpha, layers = None, []
        for i, (layer, cache) in enumerate(zip(self.layers, state["layers"])):
            x, a, cache = layer(x, cache, state["memory"]["mask"], causal,
                                need_weights=need_alpha and i == self.alpha_layer)
            alpha = a if i == self.alpha_layer else alpha
            layers.append(cache)
        logits = self.output(self.norm(x))  # [B, T, V]
        return logits, alpha, {**state, "layers": layers}

    def step(self, y_prev: Tensor, state: State) -> tuple[Tensor, Tensor, State]:
        """y_prev [B] -> log-probabilities [B, V] (float32), alpha [B, S], state one position on."""
        logits, alpha, state = self.advance(y_prev.unsqueeze(1), state)
        return logits[:, 0].float().log_softmax(-1), alpha[:, 0], state

    def forward(self, tgt_in: Tensor, state: State, need_alpha: bool = True) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing over tgt_in [B, T] in one pass -> logits [B, T, V], alpha [B, T, S] or None."""
        logits, alpha, _ = self.advance(tgt_in, state, need_alpha)
        return logits, alpha
