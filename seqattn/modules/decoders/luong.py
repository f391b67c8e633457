"""Stacked LSTM decoder with global or local attention and input feeding (Luong et al. 2015, sec. 3).

At step t the top LSTM layer gives h_t; attention over the source states h̄_s gives c_t; then

    h̃_t = tanh(W_c [c_t; h_t])              (eq. 5, the attentional hidden state)
    p(y_t | y_<t, x) = softmax(W_s h̃_t)      (eq. 6, plus an output bias)

With input feeding (sec. 3.3) the LSTM input at step t is [E y_{t-1}; h̃_{t-1}], h̃_0 = 0.
Dropout acts on the embeddings, between LSTM layers and on h̃_t.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from seqattn.state import State
from seqattn.modules.attention import Attention
from seqattn.modules.decoders.recurrent import RecurrentDecoder, Step


class LuongDecoder(RecurrentDecoder):
    def __init__(
        self, vocab_size: int, emb_dim: int, hidden_dim: int, context_dim: int, num_layers: int,
        encoder_layers: int, pad_id: int, dropout: float, attention: Attention, input_feeding: bool,
    ) -> None:
        super().__init__(attention, vocab_size, emb_dim, pad_id, dropout, embedding_dropout=dropout)
        self.input_feeding = input_feeding
        self.rnn = nn.LSTM(
            emb_dim + (hidden_dim if input_feeding else 0), hidden_dim, num_layers=num_layers,
            batch_first=True, dropout=dropout if num_layers > 1 else 0.0,
        )
        # bridge when the stacks differ in depth: [h_0; c_0] = tanh(W_b [h_n; c_n]) over all layers
        self.bridge = (
            None if encoder_layers == num_layers
            else nn.Linear(2 * encoder_layers * hidden_dim, 2 * num_layers * hidden_dim)
        )
        self.W_c = nn.Linear(context_dim + hidden_dim, hidden_dim, bias=False)
        self.W_s = nn.Linear(hidden_dim, vocab_size)

    def init_state(self, h_bar: Tensor, final: tuple[Tensor, Tensor], src_mask: Tensor) -> State:
        """Source states h̄ [B, S, C], the encoder's final (h_n, c_n) [L_enc, B, H], src_mask [B, S]
        -> state: LSTM (h, c) [B, L, H] each, h̃_{t-1} [B, H], step t [B], attention memory."""
        h, c = (x.transpose(0, 1) for x in final)  # [B, L_enc, H]
        if self.bridge is not None:
            hc = self.bridge(torch.cat([h, c], dim=1).flatten(1)).tanh()  # [B, 2 * L * H]
            h, c = hc.unflatten(1, (2, self.rnn.num_layers, -1)).unbind(1)  # [B, L, H]
        h_tilde = h_bar.new_zeros(h.size(0), self.rnn.hidden_size)  # h̃_0 = 0 [B, H]
        return {**self.start(h_bar, src_mask), "lstm": (h, c), "h_tilde": h_tilde}

    def recur(self, y_emb: Tensor, state: State) -> Step:
        """E y_{t-1} [B, E] -> features (h̃_t [B, H],), a_t [B, S], the state after step t."""
        x = torch.cat([y_emb, state["h_tilde"]], dim=-1) if self.input_feeding else y_emb  # [B, E (+ H)]
        out, (h, c) = self.rnn(x.unsqueeze(1), tuple(s.transpose(0, 1).contiguous() for s in state["lstm"]))
        h_t = out.squeeze(1)  # top layer [B, H]
        c_t, a_t = self.attend(h_t, state)
        h_tilde = self.dropout(self.W_c(torch.cat([c_t, h_t], dim=-1)).tanh())  # eq. 5, [B, H]
        return Step((h_tilde,), a_t, {**state, "lstm": (h.transpose(0, 1), c.transpose(0, 1)), "h_tilde": h_tilde})

    def logits(self, y_emb: Tensor, h_tilde: Tensor) -> Tensor:
        """Eq. 6 before the softmax: W_s h̃_t on [..., H] (E y_{t-1} does not enter)."""
        return self.W_s(h_tilde)
