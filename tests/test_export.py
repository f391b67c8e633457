"""`seqattn export` of a tiny trained Transformer: CTranslate2 scores and greedy output equal seqattn's,
ONNX Runtime reproduces the encoder and decoder steps, and what cannot be exported says so in one line."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli import app
from seqattn.data.batching import pad
from seqattn.search import greedy_search
from seqattn.training import load_model

MISSING = "not installed: pip install 'seqattn[export]'"


def export(checkpoint: Path, to: str, out: Path):
    return CliRunner().invoke(app, ["export", "-c", str(checkpoint), "--to", to, str(out)], catch_exceptions=False)


@pytest.fixture
def sources(multi30k: Path) -> tuple[list[str], list[str]]:
    """The first 16 test2016 sentences and their references."""
    return tuple((multi30k / f"test_2016_flickr.{lang}").read_text(encoding="utf-8").splitlines()[:16]
                 for lang in ("en", "de"))


def test_ctranslate2_scores_and_greedy_output_equal_seqattn(tiny_transformer: Path, sources, tmp_path: Path) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2", reason=f"ctranslate2 {MISSING}")
    result = export(tiny_transformer, "ctranslate2", tmp_path / "ct2")
    assert result.exit_code == 0, result.output
    assert {"model.bin", "config.json", "spm.model"} <= {p.name for p in (tmp_path / "ct2").iterdir()}
    model, _, task = load_model(tiny_transformer)
    translator = ctranslate2.Translator(str(tmp_path / "ct2"), device="cpu", inter_threads=1, intra_threads=1)
    english, german = sources
    src_ids, tgt_ids = task.src_tok.encode(english), task.tgt_tok.encode(german)
    src, src_mask = task.collate_inputs(model, src_ids, torch.device("cpu"))
    src_pieces = [task.src_tok.pieces(ids) for ids in src_ids]

    scored = translator.score_batch(src_pieces, [task.tgt_tok.pieces(ids) for ids in tgt_ids])
    tgt_in = pad([[model.bos_id] + ids for ids in tgt_ids], model.pad_id)
    tgt_out = pad([ids + [model.eos_id] for ids in tgt_ids], model.pad_id)
    ours = model.score(src, src_mask, tgt_in, tgt_out)
    torch.testing.assert_close(torch.tensor([sum(s.log_probs) for s in scored]), ours, atol=1e-3, rtol=1e-5)

    greedy = greedy_search(model, src, src_mask, max_len_a=0.0, max_len_b=12)
    theirs = translator.translate_batch(src_pieces, beam_size=1, max_decoding_length=12)
    assert [r.hypotheses[0] for r in theirs] == [task.tgt_tok.pieces(h.tokens) for h in greedy]


def test_onnx_runtime_reproduces_encoder_and_steps(tiny_transformer: Path, sources, tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason=f"onnx {MISSING}")
    ort = pytest.importorskip("onnxruntime", reason=f"onnxruntime {MISSING}")
    result = export(tiny_transformer, "onnx", tmp_path / "onnx")
    assert result.exit_code == 0, result.output
    model, _, task = load_model(tiny_transformer)
    src, src_mask = task.collate_inputs(model, task.src_tok.encode(sources[0][:5]), torch.device("cpu"))
    encoder = ort.InferenceSession(str(tmp_path / "onnx" / "encoder.onnx"))
    step = ort.InferenceSession(str(tmp_path / "onnx" / "decoder_step.onnx"))

    memory_k, memory_v = encoder.run(None, {"src": src.numpy(), "src_mask": src_mask.numpy()})
    with torch.no_grad():
        state = model.encode(src, src_mask)
        for name, theirs in (("k", memory_k), ("v", memory_v)):
            ours = torch.stack([layer["memory"][name] for layer in state["layers"]])
            torch.testing.assert_close(torch.from_numpy(theirs), ours, atol=1e-5, rtol=1e-5)
        L, B, h, _, d_k = memory_k.shape
        self_k = self_v = torch.zeros(L, B, h, 0, d_k).numpy()  # the first step's empty cache
        y = torch.full((B,), model.bos_id)
        for t in range(3):
            feed = {"y_prev": y.numpy(), "src_mask": src_mask.numpy(), "memory_k": memory_k, "memory_v": memory_v,
                    "self_k": self_k, "self_v": self_v}
            log_probs, alpha, self_k, self_v = step.run(None, feed)
            ours, our_alpha, state = model.step(y, state)
            torch.testing.assert_close(torch.from_numpy(log_probs), ours, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(torch.from_numpy(alpha), our_alpha, atol=1e-5, rtol=1e-5)
            assert self_k.shape == (L, B, h, t + 1, d_k)
            y = ours.argmax(-1)


def test_what_cannot_be_exported_is_a_one_line_error(tiny_rnnsearch: Path, tiny_transformer: Path, tmp_path: Path) -> None:
    result = export(tiny_rnnsearch, "ctranslate2", tmp_path / "rnn")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "model.arch is rnnsearch; export supports transformer checkpoints only" in result.stderr
    assert not (tmp_path / "rnn").exists()
    result = export(tiny_transformer, "tflite", tmp_path / "x")
    assert result.exit_code == 2 and "--to tflite: choose one of ctranslate2, onnx" in result.stderr
    result = export(tiny_transformer, "onnx", tmp_path)
    assert result.exit_code == 2 and "already exists; remove it or name a new folder" in result.stderr
