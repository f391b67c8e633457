"""GRU decoder with deep output and maxout (Cho et al. 2014; Bahdanau et al. 2015, appendix A.2.2).

With an attention module it is the RNNsearch decoder: c_i = sum_j alpha_ij h_j is recomputed
at every step from s_{i-1}. Without one it is the RNNencdec decoder: a fixed summary
c = tanh(V h_T) of the source conditions every step.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from seqattn.state import Memory, State
from seqattn.modules.attention import Attention


class RNNDecoder(nn.Module):
    def __init__(
        self, vocab_size: int, emb_dim: int, hidden_dim: int, context_dim: int, summary_dim: int,
        readout_dim: int, pad_id: int, dropout: float, attention: Attention | None,
    ) -> None:
        super().__init__()
        self.attention = attention
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        # RNNencdec: c = tanh(V h_T); both: s_0 = tanh(W_s summary)
        self.V = None if attention is not None else nn.Linear(summary_dim, context_dim)
        self.W_s = nn.Linear(context_dim if attention is None else summary_dim, hidden_dim)
        self.cell = nn.GRUCell(emb_dim + context_dim, hidden_dim)
        # t~_i = U_o s_i + V_o E y_{i-1} + C_o c_i, one matrix over the concatenation
        self.readout = nn.Linear(hidden_dim + emb_dim + context_dim, readout_dim)
        self.W_o = nn.Linear(readout_dim // 2, vocab_size)

    def init_state(self, h: Tensor, final: Tensor, src_mask: Tensor) -> State:
        """h: annotations [B, S, C], final encoder state [B, Dsum], src_mask [B, S] -> state."""
        if self.attention is None:
            c = self.V(final).tanh()  # [B, C]
            return {"s": self.W_s(c).tanh(), "c": c}
        keys, values = self.attention.precompute(h, h)  # [B, S, A], [B, S, C]
        return {"s": self.W_s(final).tanh(), "memory": Memory(keys=keys, values=values, mask=src_mask)}  # s: [B, H]

    def recur(self, y_emb: Tensor, state: State) -> tuple[Tensor, Tensor | None, State]:
        """y_emb: E y_{i-1} [B, E] -> context c_i [B, C], alpha_i [B, S] or None, state with s_i."""
        if self.attention is None:
            c, alpha = state["c"], None
        else:
            m = state["memory"]
            c, alpha = self.attention(state["s"], m["keys"], m["values"], m["mask"])
        s = self.cell(torch.cat([y_emb, c], dim=-1), state["s"])  # s_i = GRU([E y_{i-1}; c_i], s_{i-1})
        return c, alpha, {**state, "s": s}

    def logits(self, s: Tensor, y_emb: Tensor, c: Tensor) -> Tensor:
        """Deep output: t_i = maxout_2(t~_i); logits = W_o t_i. Works on [..., *] inputs."""
        t = self.readout(torch.cat([s, y_emb, c], dim=-1))
        t = t.unflatten(-1, (-1, 2)).amax(dim=-1)  # maxout over pairs
        return self.W_o(self.dropout(t))

    def step(self, y_prev: Tensor, state: State) -> tuple[Tensor, Tensor | None, State]:
        y_emb = self.embed(y_prev)  # [B, E]
        c, alpha, state = self.recur(y_emb, state)
        return self.logits(state["s"], y_emb, c).float().log_softmax(-1), alpha, state

    def forward(self, tgt_in: Tensor, state: State) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing over tgt_in [B, T] -> logits [B, T, V], alpha [B, T, S] or None."""
        y_emb = self.dropout(self.embed(tgt_in))  # [B, T, E]
        s_all, c_all, alphas = [], [], []
        for i in range(tgt_in.size(1)):
            c, alpha, state = self.recur(y_emb[:, i], state)
            s_all.append(state["s"])
            c_all.append(c)
            alphas.append(alpha)
        logits = self.logits(torch.stack(s_all, 1), y_emb, torch.stack(c_all, 1))  # [B, T, V]
        return logits, None if self.attention is None else torch.stack(alphas, 1)
