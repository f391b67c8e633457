"""Precision: the autocast dtype a precision option names and the autocast context for it; for
decoding also int8, the model's linear and recurrent weights quantised once when it is loaded."""
from __future__ import annotations

import warnings

import torch
from torch import nn

from seqattn.errors import SeqattnError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DECODE_PRECISIONS = (*PRECISIONS, "int8")
# oneDNN's int8 kernels rather than fbgemm's (torch's default on x86): over the linear layers of a
# Transformer beam-5 step of 64 sentences (320 rows) on an AVX-512 VNNI CPU, 12.0 against 15.7 ms,
# the 256 x 8000 output layer 3.8 against 8.3 ms; fbgemm's are faster at 20 rows (benchmarks/README.md)
INT8_ENGINE = "onednn"
# the layers int8 decoding quantises: every matmul with a weight matrix (attention's own Q K^T and
# alpha V, embeddings and norms stay float32)
INT8_LAYERS = (nn.Linear, nn.GRU, nn.LSTM, nn.GRUCell, nn.LSTMCell)


def choice_list(choices: tuple[str, ...]) -> str:
    return f"{', '.join(choices[:-1])} or {choices[-1]}"


def autocast_dtype(
    precision: str, device: torch.device, option: str = "train.precision", choices: tuple[str, ...] = PRECISIONS,
) -> torch.dtype | None:
    """The autocast dtype for a precision option (auto, fp32, fp16, bf16), None for full fp32."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else None
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise SeqattnError(f"{option}=fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
        return torch.float16
    raise SeqattnError(f"{option}: {precision!r} is not {choice_list(choices)}")


def decode_dtype(precision: str, device: torch.device, option: str = "--precision") -> torch.dtype | None:
    """The autocast dtype for a decoding precision: those of training, and int8 (no autocast; the
    model goes through `quantize_int8` once loaded), which runs on the CPU only."""
    if precision != "int8":
        return autocast_dtype(precision, device, option, DECODE_PRECISIONS)
    if device.type != "cpu":
        raise SeqattnError(f"{option}=int8 runs on the CPU only (torch's int8 kernels are CPU kernels); "
                           f"use fp16 or bf16 on {device}")
    return None


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of `model` (a model of such layers, not one bare layer) for CPU decoding with int8
    weights: torch's dynamic quantisation (`quantize_dynamic`) swaps every nn.Linear for one with
    int8 weights and a scale per output row, and every GRU and LSTM (layer or cell) for one with
    int8 weights and a scale per matrix. Their inputs are quantised to uint8 at each call from their
    own range, the products accumulate in int32 (oneDNN's kernels where torch has them, AVX-512 VNNI
    where the CPU has it; else fbgemm's) and come out float32: the affine scheme of Jacob et al.
    2018, sec. 2. Everything else (embeddings, norms, attention's Q K^T and alpha V) stays float32;
    a weight tied to an embedding (the Transformer's pre-softmax matrix) is quantised in its linear
    layer only."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    spec = {layer: per_channel_dynamic_qconfig if layer is nn.Linear else default_dynamic_qconfig
            for layer in INT8_LAYERS}
    engine = torch.backends.quantized.engine
    if INT8_ENGINE in torch.backends.quantized.supported_engines:  # the weights are packed for its kernels
        torch.backends.quantized.engine = INT8_ENGINE
    try:
        with warnings.catch_warnings():  # torch.ao's notices that it moves to the torchao package
            warnings.filterwarnings("ignore", message=r".*(torch\.ao\.quantization|quantized tensor creation|torch\.quantize_per).*")
            return quantize_dynamic(model.eval(), spec, dtype=torch.qint8)
    finally:
        torch.backends.quantized.engine = engine


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """Autocast to `dtype` on `device`; disabled (full fp32) for None."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
