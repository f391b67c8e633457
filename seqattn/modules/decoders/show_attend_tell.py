"""LSTM decoder attending over an image's annotation vectors (Xu et al. 2015, sec. 3.1.2 and 4).

With annotations a_1..a_L and the previous hidden state h_{t-1}, every step computes

    e_ti = f_att(a_i, h_{t-1}),  alpha_t = softmax(e_t)              (eq. 4, 5)
    z_t = beta_t * phi(a, alpha_t),  beta_t = sigmoid(f_beta(h_{t-1}))  (sec. 4.2.1, with `gate`)
    h_t, c_t = LSTM([E y_{t-1}; z_t], (h_{t-1}, c_{t-1}))              (eq. 1-3)
    p(y_t) ∝ exp(L_o(E y_{t-1} + L_h h_t + L_z z_t))                    (eq. 7, deep output)

phi is the expected context sum_i alpha_ti a_i (soft attention, eq. 13) or, for the captions
`forward` is told to sample, the annotation a_{s_t} at a location s_t ~ Multinoulli(alpha_t)
(hard attention, eq. 8-9). `step` (search) always uses the expected context. As in the authors'
code, dropout acts on the deep output only, not on the embeddings.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from seqattn.state import State
from seqattn.modules.attention import Attention
from seqattn.modules.decoders.recurrent import RecurrentDecoder, Step


class ShowAttendTellDecoder(RecurrentDecoder):
    def __init__(
        self, vocab_size: int, emb_dim: int, hidden_dim: int, annotation_dim: int, pad_id: int,
        dropout: float, attention: Attention, gate: bool,
    ) -> None:
        super().__init__(attention, vocab_size, emb_dim, pad_id, dropout, embedding_dropout=0.0)  # f_att, E
        # c_0 = f_init,c(mean_i a_i), h_0 = f_init,h(mean_i a_i) (sec. 3.1.2)
        self.f_init_c = nn.Linear(annotation_dim, hidden_dim)
        self.f_init_h = nn.Linear(annotation_dim, hidden_dim)
        self.f_beta = nn.Linear(hidden_dim, 1) if gate else None
        self.cell = nn.LSTMCell(emb_dim + annotation_dim, hidden_dim)
        self.L_h = nn.Linear(hidden_dim, emb_dim)
        self.L_z = nn.Linear(annotation_dim, emb_dim)
        self.L_o = nn.Linear(emb_dim, vocab_size)

    def init_state(self, a: Tensor, mask: Tensor) -> State:
        """Annotations a [B, L, D], mask [B, L] -> state: h, c [B, H], step t and the attention memory."""
        a_mean = (a * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)  # [B, D]
        return {**self.start(a, mask), "h": self.f_init_h(a_mean).tanh(), "c": self.f_init_c(a_mean).tanh()}

    def recur(self, y_emb: Tensor, state: State) -> Step:
        """E y_{t-1} [B, E] -> features (h_t [B, H], z_t [B, D]), alpha_t [B, L], the state after step t,
        and where state["sampled"] [B] is given the locations s_t [B] drawn for every caption (used in
        the captions it marks) as aux "locations"."""
        expected, alpha = self.attend(state["h"], state)  # [B, D], [B, L]
        sampled, aux = state.get("sampled"), {}
        if sampled is None:
            z = expected
        else:
            s = torch.multinomial(alpha.detach().float(), 1).squeeze(1)  # s_t ~ Multinoulli(alpha_t), [B]
            a_s = state["memory"]["values"][torch.arange(s.size(0), device=s.device), s]  # a_{s_t} [B, D]
            z, aux = torch.where(sampled.unsqueeze(-1), a_s, expected), {"locations": s}
        if self.f_beta is not None:
            z = torch.sigmoid(self.f_beta(state["h"])) * z  # beta_t in (0, 1)
        h, c = self.cell(torch.cat([y_emb, z], dim=-1), (state["h"], state["c"]))
        return Step((h, z), alpha, {**state, "h": h, "c": c}, aux)

    def logits(self, y_emb: Tensor, h: Tensor, z: Tensor) -> Tensor:
        """Deep output (eq. 7): L_o(E y_{t-1} + L_h h_t + L_z z_t) on [..., *] inputs."""
        return self.L_o(self.dropout(y_emb + self.L_h(h) + self.L_z(z)))

    def forward(
        self, tgt_in: Tensor, state: State, sampled: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Teacher forcing over tgt_in [B, T]; the captions `sampled` [B] marks use hard attention
        -> logits [B, T, V], alpha [B, T, L], aux {"locations": s [B, T]} (empty without `sampled`)."""
        return super().forward(tgt_in, state if sampled is None else {**state, "sampled": sampled})
