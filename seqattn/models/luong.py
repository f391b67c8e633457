"""Luong et al. 2015: stacked LSTMs with global or local attention and input feeding.

The encoder is unidirectional, as in the paper: its states h̄_s have the decoder's size, so the
dot score applies as is, and its final (h, c) of every layer start the decoder (through a bridge
only when the stacks differ in depth).
"""
from __future__ import annotations

from torch import Tensor

from seqattn.config import ModelConfig
from seqattn.errors import SeqattnError
from seqattn.models.base import Output, Seq2Seq
from seqattn.state import State
from seqattn.modules.attention import Attention, ConcatAttention, DotAttention, GeneralAttention, LocalAttention
from seqattn.modules.decoders import LuongDecoder
from seqattn.modules.encoders import RNNEncoder

SCORES = ("dot", "general", "concat")
ALIGNMENTS = ("global", "local-m", "local-p")


class LuongSeq2Seq(Seq2Seq):
    """A stacked LSTM encoder and the Luong decoder (attentional hidden state, input feeding)."""

    def __init__(self, encoder: RNNEncoder, decoder: LuongDecoder, pad_id: int, bos_id: int, eos_id: int) -> None:
        super().__init__(pad_id, bos_id, eos_id)
        self.encoder, self.decoder = encoder, decoder

    def encode(self, src: Tensor, src_mask: Tensor) -> State:
        h_bar, final = self.encoder(src, src_mask)  # [B, S, H], (h_n, c_n) [L_enc, B, H]
        return self.decoder.init_state(h_bar, final, src_mask)

    def step(self, y_prev: Tensor, state: State) -> tuple[Tensor, Tensor, State]:
        return self.decoder.step(y_prev, state)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, need_alpha: bool = True) -> Output:
        """As Seq2Seq.forward; the recurrence computes alpha at every step anyway, so it is always returned."""
        return Output(*self.decoder(tgt_in, self.encode(src, src_mask)))


def build_attention(cfg: ModelConfig, key_dim: int) -> Attention:
    """score(h_t, h̄_s) (eq. 8) under global (sec. 3.1) or local (sec. 3.2) alignment."""
    if cfg.score not in SCORES:
        raise SeqattnError(f"model.score: unknown score {cfg.score!r}; choose one of {', '.join(SCORES)}")
    if cfg.alignment not in ALIGNMENTS:
        raise SeqattnError(
            f"model.alignment: unknown alignment {cfg.alignment!r}; choose one of {', '.join(ALIGNMENTS)}"
        )
    if cfg.score == "dot":
        attention: Attention = DotAttention()
    elif cfg.score == "general":
        attention = GeneralAttention(cfg.hidden_dim, key_dim)
    else:
        attention = ConcatAttention(cfg.hidden_dim, key_dim, cfg.attention_dim)
    if cfg.alignment == "global":
        return attention
    if cfg.window < 1:
        raise SeqattnError(f"model.window: local attention needs a half-width D >= 1, got {cfg.window}")
    return LocalAttention(attention, cfg.window, cfg.hidden_dim, predictive=cfg.alignment == "local-p")


def build_luong(
    cfg: ModelConfig, src_vocab: int, tgt_vocab: int, pad_id: int, bos_id: int, eos_id: int,
) -> LuongSeq2Seq:
    """Unidirectional stacked LSTM encoder (reading backwards if `reverse_source`), Luong decoder with the
    configured score and alignment."""
    encoder = RNNEncoder(
        src_vocab, cfg.emb_dim, cfg.hidden_dim, pad_id, bidirectional=False,
        num_layers=cfg.encoder_layers, dropout=cfg.dropout, cell="lstm", reverse=cfg.reverse_source,
    )
    decoder = LuongDecoder(
        tgt_vocab, cfg.emb_dim, cfg.hidden_dim, context_dim=encoder.output_dim, num_layers=cfg.decoder_layers,
        encoder_layers=cfg.encoder_layers, pad_id=pad_id, dropout=cfg.dropout,
        attention=build_attention(cfg, encoder.output_dim), input_feeding=cfg.input_feeding,
    )
    return LuongSeq2Seq(encoder, decoder, pad_id, bos_id, eos_id)
