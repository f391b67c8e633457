"""A seqattn Transformer as two ONNX graphs for a server's own search loop: the encoder, and one
decoder step over a growing self-attention cache (torch's TorchScript-based exporter: the dynamo
exporter needs onnxscript, which seqattn does not install).

    encoder.onnx       src [B, S] int64, src_mask [B, S] bool
                       -> memory_k, memory_v [L, B, h, S, d_k]: each decoder layer's W^K, W^V of the encoder output
    decoder_step.onnx  y_prev [B] int64 (BOS first), src_mask, memory_k, memory_v,
                       self_k, self_v [L, B, h, t, d_k] (t = 0 at the first step)
                       -> log_probs [B, V], alpha [B, S], self_k, self_v [L, B, h, t + 1, d_k]

Sources end with EOS, as `seqattn translate` feeds them; L is decoder_layers, h heads, d_k = d_model / h.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from seqattn.export import require
from seqattn.models.transformer import TransformerSeq2Seq
from seqattn.state import Rows, SentenceMemory
from seqattn.tasks.translation import TranslationTask

OPSET = 17  # LayerNormalization is one op from 17 on


class Encoder(nn.Module):
    """encode(), with the cross-attention keys and values of every decoder layer stacked."""

    def __init__(self, model: TransformerSeq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        layers = self.model.encode(src, src_mask)["layers"]
        return torch.stack([x["memory"]["k"] for x in layers]), torch.stack([x["memory"]["v"] for x in layers])


class DecoderStep(nn.Module):
    """step() over stacked tensors instead of the nested decoder state."""

    def __init__(self, model: TransformerSeq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, y_prev: Tensor, src_mask: Tensor, memory_k: Tensor, memory_v: Tensor, self_k: Tensor, self_v: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        layers = [{"memory": SentenceMemory(k=memory_k[i], v=memory_v[i]), "self_k": Rows(self_k[i]), "self_v": Rows(self_v[i])}
                  for i in range(len(self.model.decoder.layers))]
        log_probs, alpha, state = self.model.step(y_prev, {"memory": SentenceMemory(mask=src_mask), "layers": layers})
        caches = state["layers"]
        return (log_probs, alpha, torch.stack([x["self_k"].tensor() for x in caches]),
                torch.stack([x["self_v"].tensor() for x in caches]))


def export_onnx(model: TransformerSeq2Seq, task: TranslationTask, out: Path) -> None:
    """Write encoder.onnx and decoder_step.onnx of `model` into folder `out`."""
    require("onnx")
    model = model.float().eval()
    pad, bos, eos = model.pad_id, model.bos_id, model.eos_id
    src = torch.tensor([[bos + 2, bos + 3, eos], [bos + 2, eos, pad]])  # two sources, one padded
    src_mask = src.ne(pad)
    with torch.no_grad():
        memory_k, memory_v = Encoder(model)(src, src_mask)
    L, B, h, _, d_k = memory_k.shape
    cache = torch.zeros(L, B, h, 1, d_k)  # traced with one cached position: the cache grows by concatenation
    batch, source, cached = {0: "batch"}, {0: "batch", 1: "source"}, {1: "batch", 3: "cached"}
    memory = {1: "batch", 3: "source"}
    with warnings.catch_warnings():
        # the exporter's notice that it is the legacy one; and the tracer's notes on the branches it fixes, as
        # meant: one query position per step, and a cache that is concatenated (it is empty at no traced step,
        # and ONNX Runtime concatenates an empty one as well: tests/test_export.py starts from t = 0)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            Encoder(model), (src, src_mask), str(out / "encoder.onnx"), dynamo=False, opset_version=OPSET,
            input_names=["src", "src_mask"], output_names=["memory_k", "memory_v"],
            dynamic_axes={"src": source, "src_mask": source, "memory_k": memory, "memory_v": memory})
        torch.onnx.export(
            DecoderStep(model), (torch.full((B,), bos), src_mask, memory_k, memory_v, cache, cache),
            str(out / "decoder_step.onnx"), dynamo=False, opset_version=OPSET,
            input_names=["y_prev", "src_mask", "memory_k", "memory_v", "self_k", "self_v"],
            output_names=["log_probs", "alpha", "next_self_k", "next_self_v"],
            dynamic_axes={"y_prev": batch, "src_mask": source, "memory_k": memory, "memory_v": memory,
                          "self_k": cached, "self_v": cached, "log_probs": batch, "alpha": source,
                          "next_self_k": cached, "next_self_v": cached})
