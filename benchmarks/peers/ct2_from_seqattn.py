"""Convert a trained seqattn Transformer checkpoint (best.pt) to a CTranslate2 model folder (fp32).

    python ct2_from_seqattn.py runs/vaswani2017/transformer/best.pt ct2_seqattn

The same weights in CTranslate2's TransformerSpec, so that CTranslate2 decodes the very model
seqattn decodes: post-norm or pre-norm layers (`model.norm`), our interleaved sinusoidal
positions given as a table, embeddings scaled by sqrt(d_model), LayerNorm eps 1e-5, the output
bias, and W^Q, W^K, W^V fused as CTranslate2 expects (self-attention: one [3d, d] projection;
cross-attention: W^Q, then W^K and W^V as one [2d, d]). The vocabulary is the checkpoint's
sentencepiece model (pad, unk, <s>, </s> at 0-3, CTranslate2's default names). seqattn's sources
end with </s>: the model's config sets add_source_eos. Runs in the peers' venv (needs ctranslate2).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
from ctranslate2.converters import Converter
from ctranslate2.converters.utils import fuse_linear
from ctranslate2.specs import common_spec, transformer_spec

POSITIONS = 1024  # rows of the position table: longest source or output CTranslate2 may see


def sinusoids(positions: int, d_model: int) -> np.ndarray:
    """PE(pos, 2i) = sin(pos / 10000^{2i/d}), PE(pos, 2i+1) = cos(...), as seqattn.modules.positional."""
    inv_freq = np.exp(np.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    angles = np.arange(positions)[:, None] * inv_freq[None, :]  # [P, d/2]
    return np.stack([np.sin(angles), np.cos(angles)], axis=-1).reshape(positions, d_model).astype(np.float32)


class SeqattnConverter(Converter):
    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint

    def _load(self) -> transformer_spec.TransformerSpec:
        ckpt = torch.load(self.checkpoint, map_location="cpu", weights_only=False)
        model, weights = ckpt["config"]["model"], ckpt["model"]
        if model["arch"] != "transformer":
            raise SystemExit(f"{self.checkpoint}: model.arch is {model['arch']!r}; only the Transformer converts")
        if not ckpt["config"]["subword"]["joint"]:
            raise SystemExit(f"{self.checkpoint}: trained with subword.joint=false; the converter reads one "
                             "joint spm.model beside the checkpoint")
        w = {k: v.float().numpy() for k, v in weights.items()}
        pre_norm = model["norm"] == "pre"
        spec = transformer_spec.TransformerSpec.from_config(
            (model["encoder_layers"], model["decoder_layers"]), model["heads"], pre_norm=pre_norm)
        d_model = model["hidden_dim"]

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
            embeddings.weight = w[f"{prefix}.embed.tokens.weight"]  # scaled by sqrt(d_model): CT2's default
            side.position_encodings.encodings = sinusoids(POSITIONS, d_model)
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
        sp = spm.SentencePieceProcessor(model_file=str(self.checkpoint.parent / "spm.model"))
        vocabulary = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
        spec.register_source_vocabulary(vocabulary)
        spec.register_target_vocabulary(vocabulary)
        spec.config.add_source_eos = True
        spec.config.layer_norm_epsilon = 1e-5
        return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="A Transformer best.pt / last.pt with spm.model beside it.")
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args()
    SeqattnConverter(args.checkpoint).convert(str(args.output_dir), force=True)
    print(f"converted {args.checkpoint} -> {args.output_dir}")


if __name__ == "__main__":
    main()
