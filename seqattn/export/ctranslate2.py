"""A seqattn Transformer as a CTranslate2 model folder (fp32), so that CTranslate2 decodes the very
model seqattn decodes.

The same weights in CTranslate2's TransformerSpec: post-norm or pre-norm layers (`model.norm`), our
interleaved sinusoidal positions given as a table, embeddings scaled by sqrt(d_model) (CTranslate2's
default), LayerNorm eps 1e-5, the output bias, and W^Q, W^K, W^V fused as CTranslate2 expects
(self-attention: one [3d, d] projection; cross-attention: W^Q, then W^K and W^V as one [2d, d]).
The vocabularies are the sentencepiece models' pieces (pad, unk, <s>, </s> at 0-3, CTranslate2's
default names); seqattn's sources end with </s>, so the config sets add_source_eos.
"""
from __future__ import annotations

from pathlib import Path

import torch

from seqattn.export import require
from seqattn.models.transformer import TransformerSeq2Seq
from seqattn.modules.positional import sinusoidal_encoding
from seqattn.tasks.translation import TranslationTask

POSITIONS = 1024  # rows of the position table: the longest source or output CTranslate2 may see


def export_ctranslate2(model: TransformerSeq2Seq, task: TranslationTask, out: Path) -> None:
    """Write `model` as a CTranslate2 model (model.bin, config.json, vocabularies) into folder `out`."""
    require("ctranslate2")
    spec = transformer_spec(model, task)
    spec.validate()
    spec.optimize(quantization=None)
    spec.save(str(out))


def transformer_spec(model: TransformerSeq2Seq, task: TranslationTask):
    """`model`'s weights and `task`'s vocabularies in a ctranslate2 TransformerSpec."""
    from ctranslate2.converters.utils import fuse_linear
    from ctranslate2.specs import common_spec, transformer_spec

    w = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    encoder, decoder = model.encoder, model.decoder
    pre_norm = isinstance(encoder.norm, torch.nn.LayerNorm)
    heads = encoder.layers[0].self_attn.h
    spec = transformer_spec.TransformerSpec.from_config((len(encoder.layers), len(decoder.layers)), heads, pre_norm=pre_norm)
    positions = sinusoidal_encoding(torch.arange(POSITIONS), encoder.embed.d_model).numpy()

    def linear(layer: common_spec.LinearSpec, name: str) -> None:
        layer.weight, layer.bias = w[f"{name}.weight"], w[f"{name}.bias"]

    def norm(layer: common_spec.LayerNormSpec, name: str) -> None:
        layer.gamma, layer.beta = w[f"{name}.weight"], w[f"{name}.bias"]

    def attention(layer, name: str, self_attention: bool) -> None:
        parts = [common_spec.LinearSpec() for _ in range(3)]
        for part, proj in zip(parts, ("W_Q", "W_K", "W_V")):
            linear(part, f"{name}.{proj}")
        if self_attention:
            fuse_linear(layer.linear[0], parts)
        else:
            layer.linear[0] = parts[0]
            fuse_linear(layer.linear[1], parts[1:])
        linear(layer.linear[-1], f"{name}.W_O")

    def stack(side, prefix: str, cross: bool) -> None:
        embeddings = side.embeddings[0] if isinstance(side.embeddings, list) else side.embeddings
        embeddings.weight = w[f"{prefix}.embed.tokens.weight"]
        side.position_encodings.encodings = positions
        if pre_norm:
            norm(side.layer_norm, f"{prefix}.norm")
        for i, layer in enumerate(side.layer):
            name = f"{prefix}.layers.{i}"
            attention(layer.self_attention, f"{name}.self_attn", True)
            norm(layer.self_attention.layer_norm, f"{name}.self_res.norm")
            if cross:
                attention(layer.attention, f"{name}.cross_attn", False)
                norm(layer.attention.layer_norm, f"{name}.cross_res.norm")
            linear(layer.ffn.linear_0, f"{name}.ffn.W_1")
            linear(layer.ffn.linear_1, f"{name}.ffn.W_2")
            norm(layer.ffn.layer_norm, f"{name}.ffn_res.norm")

    stack(spec.encoder, "encoder", cross=False)
    stack(spec.decoder, "decoder", cross=True)
    linear(spec.decoder.projection, "decoder.output")
    spec.register_source_vocabulary(pieces(task.src_tok))
    spec.register_target_vocabulary(pieces(task.tgt_tok))
    spec.config.add_source_eos = True
    spec.config.layer_norm_epsilon = 1e-5
    return spec


def pieces(tok) -> list[str]:
    """A sentencepiece Tokenizer's pieces, by id."""
    return tok.pieces(list(range(len(tok))))
