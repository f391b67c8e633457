"""RNNencdec (Cho et al. 2014) and RNNsearch (Bahdanau et al. 2015) on the shared RNN modules."""
from __future__ import annotations

from torch import Tensor

from seqattn.config import ModelConfig
from seqattn.errors import SeqattnError
from seqattn.models.base import Output, Seq2Seq
from seqattn.state import State
from seqattn.modules.attention import AdditiveAttention
from seqattn.modules.decoders import RNNDecoder
from seqattn.modules.encoders import RNNEncoder


class RNNSeq2Seq(Seq2Seq):
    """A GRU encoder and a GRU decoder with deep output; attention decides which paper it is."""

    def __init__(self, encoder: RNNEncoder, decoder: RNNDecoder, pad_id: int, bos_id: int, eos_id: int) -> None:
        super().__init__(pad_id, bos_id, eos_id)
        self.encoder, self.decoder = encoder, decoder

    def encode(self, src: Tensor, src_mask: Tensor) -> State:
        h, h_n = self.encoder(src, src_mask)  # [B, S, C], [layers * dirs, B, H]
        # s_0 from the top layer's last direction (Bahdanau A.2.2: s_0 = tanh(W_s ←h_1))
        return self.decoder.init_state(h, h_n[-1], src_mask)

    def step(self, y_prev: Tensor, state: State) -> tuple[Tensor, Tensor | None, State]:
        return self.decoder.step(y_prev, state)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, need_alpha: bool = True) -> Output:
        """As Seq2Seq.forward; the recurrence computes alpha at every step anyway, so it is always returned."""
        return Output(*self.decoder(tgt_in, self.encode(src, src_mask)))


def build_rnn(cfg: ModelConfig, src_vocab: int, tgt_vocab: int, pad_id: int, bos_id: int, eos_id: int) -> RNNSeq2Seq:
    """RNNencdec: unidirectional encoder, fixed summary. RNNsearch: bidirectional encoder, additive attention."""
    if cfg.readout_dim % 2:
        raise SeqattnError(f"model.readout_dim: must be even for maxout over pairs, got {cfg.readout_dim}")
    search = cfg.arch == "rnnsearch"
    encoder = RNNEncoder(
        src_vocab, cfg.emb_dim, cfg.hidden_dim, pad_id, bidirectional=search,
        num_layers=cfg.encoder_layers, dropout=cfg.dropout,
    )
    attention = AdditiveAttention(cfg.hidden_dim, encoder.output_dim, cfg.attention_dim) if search else None
    decoder = RNNDecoder(
        tgt_vocab, cfg.emb_dim, cfg.hidden_dim, context_dim=encoder.output_dim,
        summary_dim=cfg.hidden_dim, readout_dim=cfg.readout_dim, pad_id=pad_id,
        dropout=cfg.dropout, attention=attention,
    )
    return RNNSeq2Seq(encoder, decoder, pad_id, bos_id, eos_id)
