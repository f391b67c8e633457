"""GRU decoder with deep output and maxout (Cho et al. 2014; Bahdanau et al. 2015, appendix A.2.2).

With an attention module it is the RNNsearch decoder: c_i = sum_j alpha_ij h_j is recomputed
at every step from s_{i-1} (eq. 5-6). Without one it is the RNNencdec decoder: a fixed summary
c = tanh(V h_T) of the source conditions every step. Dropout acts on the embeddings and on t_i.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from seqattn.state import State
from seqattn.modules.attention import Attention
from seqattn.modules.decoders.recurrent import RecurrentDecoder, Step


class RNNDecoder(RecurrentDecoder):
    def __init__(
        self, vocab_size: int, emb_dim: int, hidden_dim: int, context_dim: int, summary_dim: int,
        readout_dim: int, pad_id: int, dropout: float, attention: Attention | None,
    ) -> None:
        super().__init__(attention, vocab_size, emb_dim, pad_id, dropout, embedding_dropout=dropout)
        # RNNencdec: c = tanh(V h_T); both: s_0 = tanh(W_s summary)
        self.V = None if attention is not None else nn.Linear(summary_dim, context_dim)
        self.W_s = nn.Linear(context_dim if attention is None else summary_dim, hidden_dim)
        self.cell = nn.GRUCell(emb_dim + context_dim, hidden_dim)
        # t~_i = U_o s_i + V_o E y_{i-1} + C_o c_i, one matrix over the concatenation
        self.readout = nn.Linear(hidden_dim + emb_dim + context_dim, readout_dim)
        self.W_o = nn.Linear(readout_dim // 2, vocab_size)

    def init_state(self, h: Tensor, final: Tensor, src_mask: Tensor) -> State:
        """h: annotations [B, S, C], final encoder state [B, Dsum], src_mask [B, S] -> state with s_0 [B, H]
        and, for RNNencdec, the summary c [B, C]."""
        state = self.start(h, src_mask)
        if self.attention is None:
            c = self.V(final).tanh()  # [B, C]
            return {**state, "s": self.W_s(c).tanh(), "c": c}
        return {**state, "s": self.W_s(final).tanh()}

    def recur(self, y_emb: Tensor, state: State) -> Step:
        """E y_{i-1} [B, E] -> features (s_i [B, H], c_i [B, C]), alpha_i [B, S] or None, state with s_i."""
        c, alpha = (state["c"], None) if self.attention is None else self.attend(state["s"], state)
        s = self.cell(torch.cat([y_emb, c], dim=-1), state["s"])  # s_i = GRU([E y_{i-1}; c_i], s_{i-1})
        return Step((s, c), alpha, {**state, "s": s})

    def logits(self, y_emb: Tensor, s: Tensor, c: Tensor) -> Tensor:
        """Deep output: t_i = maxout_2(t~_i); logits = W_o t_i. Works on [..., *] inputs."""
        t = self.readout(torch.cat([s, y_emb, c], dim=-1))
        t = t.unflatten(-1, (-1, 2)).amax(dim=-1)  # maxout over pairs
        return self.W_o(self.dropout(t))
