"""The Transformer (Vaswani et al. 2017) behind the Seq2Seq interface."""
from __future__ import annotations

import torch
from torch import Tensor

from seqattn.config import ModelConfig
from seqattn.errors import SeqattnError
from seqattn.models.base import Output, Seq2Seq
from seqattn.state import State
from seqattn.modules.decoders import TransformerDecoder
from seqattn.modules.encoders import TransformerEncoder

NORMS = ("post", "pre")


class TransformerSeq2Seq(Seq2Seq):
    """Self-attention encoder and decoder; search steps one position at a time over a key-value cache."""

    def __init__(
        self, encoder: TransformerEncoder, decoder: TransformerDecoder, pad_id: int, bos_id: int, eos_id: int,
    ) -> None:
        super().__init__(pad_id, bos_id, eos_id)
        self.encoder, self.decoder = encoder, decoder

    def encode(self, src: Tensor, src_mask: Tensor) -> State:
        return self.decoder.init_state(self.encoder(src, src_mask), src_mask)  # memory [B, S, d_model]

    def step(self, y_prev: Tensor, state: State) -> tuple[Tensor, Tensor | None, State]:
        return self.decoder.step(y_prev, state)

    def forward(
        self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, need_alpha: bool = True,
    ) -> Output:
        """As Seq2Seq.forward; need_alpha=False skips the explicit weights (fused attention everywhere)."""
        return Output(*self.decoder(tgt_in, self.encode(src, src_mask), need_alpha))

    def fuse_for_decoding(self) -> None:
        """W^Q, W^K, W^V of every self-attention as one layer (MultiHeadAttention.fuse_projections)."""
        for layer in (*self.encoder.layers, *self.decoder.layers):
            layer.self_attn.fuse_projections()

    def attention_shape(self) -> tuple[int, int]:
        return len(self.decoder.layers), self.decoder.layers[0].cross_attn.h

    def alpha_choice(self) -> tuple[int, int]:
        layer = self.decoder.alpha_layer
        return layer, self.decoder.layers[layer].cross_attn.alpha_head

    def cross_attention(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        """Every decoder layer's and head's softmax(Q K^T / sqrt(d_k)) over the source [B, L, h, T, S],
        recorded by hooks on the cross-attentions of a forced pass (recomputed from the queries and
        keys each layer was given, before dropout)."""
        weights: list[Tensor] = []  # per layer [B, h, T, S]

        def record(attn, args, output) -> None:
            query, keys, values, mask = args  # [B, T, d_model], [B, h, S, d_k] twice, src_mask [B, S]
            weights.append(attn.attend(attn.queries(query), keys, values, mask[:, None, None, :], 0.0)[1])

        handles = [layer.cross_attn.register_forward_hook(record) for layer in self.decoder.layers]
        try:
            self(src, src_mask, tgt_in, need_alpha=False)
        finally:
            for handle in handles:
                handle.remove()
        return torch.stack(weights, dim=1)


def check_config(cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> None:
    """Raise SeqattnError naming the option a Transformer cannot be built with."""
    if cfg.emb_dim != cfg.hidden_dim:
        raise SeqattnError(
            f"model.emb_dim / model.hidden_dim: the Transformer needs emb_dim == hidden_dim (d_model), "
            f"got {cfg.emb_dim} and {cfg.hidden_dim}"
        )
    if cfg.heads < 1 or cfg.hidden_dim % cfg.heads:
        raise SeqattnError(f"model.heads: hidden_dim (d_model) {cfg.hidden_dim} is not divisible by heads {cfg.heads}")
    if cfg.norm not in NORMS:
        raise SeqattnError(f"model.norm: unknown {cfg.norm!r}; choose one of {', '.join(NORMS)}")
    if not -cfg.decoder_layers <= cfg.attention_layer < cfg.decoder_layers:
        raise SeqattnError(
            f"model.attention_layer: {cfg.attention_layer} is not a decoder layer (decoder_layers={cfg.decoder_layers})"
        )
    if not -1 <= cfg.attention_head < cfg.heads:
        raise SeqattnError(f"model.attention_head: {cfg.attention_head} is not -1 (average) or a head < {cfg.heads}")
    if cfg.tie_embeddings and src_vocab != tgt_vocab:
        raise SeqattnError(
            f"model.tie_embeddings: needs one joint vocabulary, got source {src_vocab} and target {tgt_vocab} "
            f"entries (set subword.joint: true or model.tie_embeddings: false)"
        )


def build_transformer(
    cfg: ModelConfig, src_vocab: int, tgt_vocab: int, pad_id: int, bos_id: int, eos_id: int,
) -> TransformerSeq2Seq:
    """d_model = hidden_dim. With tie_embeddings the source and target embeddings and the pre-softmax
    projection are one matrix (sec. 3.4)."""
    check_config(cfg, src_vocab, tgt_vocab)
    common = dict(
        d_model=cfg.hidden_dim, heads=cfg.heads, ffn_dim=cfg.ffn_dim, pad_id=pad_id, dropout=cfg.dropout,
        attention_dropout=cfg.attention_dropout, pre_norm=cfg.norm == "pre",
    )
    encoder = TransformerEncoder(src_vocab, num_layers=cfg.encoder_layers, **common)
    decoder = TransformerDecoder(
        tgt_vocab, num_layers=cfg.decoder_layers, attention_layer=cfg.attention_layer,
        attention_head=cfg.attention_head, **common,
    )
    if cfg.tie_embeddings:
        decoder.output.weight = decoder.embed.tokens.weight
        encoder.embed.tokens.weight = decoder.embed.tokens.weight
    return TransformerSeq2Seq(encoder, decoder, pad_id, bos_id, eos_id)
