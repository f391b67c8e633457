"""The skeleton every recurrent attention decoder shares (RNNsearch/RNNencdec, Luong, Show-Attend-Tell).

At step t a decoder embeds the previous word, E y_{t-1} (with embedding dropout), advances its
recurrence one step (`recur`: the cell and the attention, in the order its paper gives) and maps
the step's features to logits (`logits`: the paper's readout). Search runs this one step at a time
(`step`); teacher forcing unrolls it over the target (`forward`) and runs the readout once over all
steps. The state holds the step index t [B], which every attention gets (base.Attention), and the
attention memory from `start`, both per sentence, as seqattn.state describes.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import torch
from torch import Tensor, nn

from seqattn.modules.attention import Attention
from seqattn.modules.dropout import Dropout
from seqattn.state import Memory, State


class Step(NamedTuple):
    """What one step of the recurrence gives."""

    features: tuple[Tensor, ...]  # what `logits` reads besides E y_{t-1}, each [B, *]
    alpha: Tensor | None  # attention weights [B, S], None without attention
    state: State  # the state after the step
    aux: dict[str, Tensor] = {}  # per-step extras [B, *] that teacher forcing stacks over the steps


class RecurrentDecoder(nn.Module, ABC):
    """E y_{t-1} with embedding dropout, then `recur` and `logits` of the subclass.

    `dropout` is the subclass's own dropout (deep output, attentional state); `embedding_dropout` acts on
    E y_{t-1}, the same way in `forward` and `step`.
    """

    def __init__(
        self, attention: Attention | None, vocab_size: int, emb_dim: int, pad_id: int, dropout: float,
        embedding_dropout: float,
    ) -> None:
        super().__init__()
        self.attention = attention
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)  # E
        self.dropout = Dropout(dropout)
        self.embedding_dropout = Dropout(embedding_dropout)

    def embed_tokens(self, y: Tensor) -> Tensor:
        """E y with embedding dropout, ids y [B] or [B, T] -> [B, (T,) E]: how both `step` and `forward` embed."""
        return self.embedding_dropout(self.embed(y))

    def start(self, annotations: Tensor, mask: Tensor) -> State:
        """annotations [B, S, C], mask [B, S] -> the shared part of the initial state: step t = 0 [B] and,
        with attention, its memory (keys and values precomputed once per sentence)."""
        t = mask.new_zeros(mask.size(0), dtype=torch.long)  # [B]
        if self.attention is None:
            return {"t": t}
        keys, values = self.attention.precompute(annotations, annotations)  # [B, S, *], [B, S, C]
        return {"t": t, "memory": Memory(keys=keys, values=values, mask=mask)}

    def attend(self, query: Tensor, state: State) -> tuple[Tensor, Tensor]:
        """query [B, Dq] -> context [B, C], alpha [B, S] over the memory at step state["t"]."""
        m = state["memory"]
        return self.attention(query, m["keys"], m["values"], m["mask"], state["t"])

    @abstractmethod
    def recur(self, y_emb: Tensor, state: State) -> Step:
        """E y_{t-1} [B, E] and the state before step t -> the step's features, alpha and state."""

    @abstractmethod
    def logits(self, y_emb: Tensor, *features: Tensor) -> Tensor:
        """The readout: E y_{t-1} [..., E] and the step's features [..., *] -> logits [..., V]."""

    def advance(self, y_emb: Tensor, state: State) -> Step:
        """`recur`, then the step index moves on."""
        step = self.recur(y_emb, state)
        return step._replace(state={**step.state, "t": state["t"] + 1})

    def step(self, y_prev: Tensor, state: State) -> tuple[Tensor, Tensor | None, State]:
        """y_prev [B] -> log-probabilities [B, V] (float32), alpha [B, S] or None, the next state."""
        y_emb = self.embed_tokens(y_prev)  # [B, E]
        features, alpha, state, _ = self.advance(y_emb, state)
        return self.logits(y_emb, *features).float().log_softmax(-1), alpha, state

    def forward(self, tgt_in: Tensor, state: State) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
        """Teacher forcing over tgt_in [B, T] -> logits [B, T, V], alpha [B, T, S] or None, and the
        steps' aux stacked [B, T, *]. The recurrence runs step by step; the readout once over all steps."""
        y_emb = self.embed_tokens(tgt_in)  # [B, T, E]
        steps: list[Step] = []
        for t in range(tgt_in.size(1)):
            step = self.advance(y_emb[:, t], state)
            steps.append(step)
            state = step.state
        features = (torch.stack(f, 1) for f in zip(*(s.features for s in steps)))  # each [B, T, *]
        alpha = None if steps[0].alpha is None else torch.stack([s.alpha for s in steps], 1)  # [B, T, S]
        aux = {key: torch.stack([s.aux[key] for s in steps], 1) for key in steps[0].aux}
        return self.logits(y_emb, *features), alpha, aux
