"""int8 decoding (`--precision int8`): every translation model, overfit on four pairs, decodes them
with int8 weights as it does in fp32, beam search of width 1 is still greedy search, and the
option's errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqattn.api import Model
from seqattn.config import ModelConfig
from seqattn.errors import SeqattnError
from seqattn.models import Seq2Seq, build_model
from seqattn.precision import INT8_LAYERS, decode_dtype, quantize_int8
from seqattn.search import beam_search, greedy_search

from helpers import assert_overfits

PAD, BOS, EOS, VOCAB = 0, 2, 3, 24
SMALL = dict(emb_dim=16, hidden_dim=32, attention_dim=16, readout_dim=32, dropout=0.0)
MODELS = {  # every translation architecture, the Transformer in both layer orders
    "rnnencdec": dict(arch="rnnencdec", **SMALL),
    "rnnsearch": dict(arch="rnnsearch", **SMALL),
    "luong": dict(arch="luong", **SMALL, score="general", alignment="local-p", window=2),
    "transformer-post": dict(arch="transformer", emb_dim=32, hidden_dim=32, heads=4, ffn_dim=64, encoder_layers=2,
                             decoder_layers=2, dropout=0.0, attention_dropout=0.0, norm="post"),
    "transformer-pre": dict(arch="transformer", emb_dim=32, hidden_dim=32, heads=4, ffn_dim=64, encoder_layers=2,
                            decoder_layers=2, dropout=0.0, attention_dropout=0.0, norm="pre"),
}
LOG_PROB_TOLERANCE = 0.05  # |log p int8 - log p fp32| of a whole output (at most 6 tokens)
LIMITS = dict(max_len_a=2.0, max_len_b=5)


def weight_layers(model: torch.nn.Module) -> list[str]:
    """Names of the float linear and recurrent layers left in `model`."""
    return [name for name, module in model.named_modules() if type(module) in INT8_LAYERS]


@pytest.mark.parametrize("name", MODELS)
def test_int8_decodes_an_overfit_model_as_fp32(name: str) -> None:
    torch.manual_seed(0)
    model: Seq2Seq = build_model(ModelConfig(**MODELS[name]), VOCAB, VOCAB, PAD, BOS, EOS)
    batch = assert_overfits(model)  # fp32 greedy search reproduces the four targets
    int8 = quantize_int8(model)
    assert weight_layers(int8) == [] and weight_layers(model) != []  # all quantised, in a copy
    fp32_hyps = greedy_search(model, batch.src, batch.src_mask, **LIMITS)
    int8_hyps = greedy_search(int8, batch.src, batch.src_mask, **LIMITS)
    beam_hyps = beam_search(int8, batch.src, batch.src_mask, beam_size=1, length_penalty="none", **LIMITS)
    for fp32, greedy, [beam] in zip(fp32_hyps, int8_hyps, beam_hyps):
        assert greedy.tokens == fp32.tokens and greedy.finished
        assert greedy.log_prob == pytest.approx(fp32.log_prob, abs=LOG_PROB_TOLERANCE)
        assert beam.tokens == greedy.tokens and beam.finished
        assert beam.log_prob == pytest.approx(greedy.log_prob, abs=1e-5)


def test_int8_is_for_the_cpu_only_and_named_among_the_choices(tmp_path: Path) -> None:
    assert decode_dtype("int8", torch.device("cpu")) is None
    with pytest.raises(SeqattnError, match=r"^--precision=int8 runs on the CPU only .*; use fp16 or bf16 on cuda"):
        decode_dtype("int8", torch.device("cuda"))
    with pytest.raises(SeqattnError, match="precision=int8 runs on the CPU only"):  # before the file is read
        Model.from_checkpoints([tmp_path / "missing.pt"], torch.device("cuda"), "int8")
    with pytest.raises(SeqattnError, match="--precision: 'int4' is not auto, fp32, fp16, bf16 or int8"):
        decode_dtype("int4", torch.device("cpu"))
