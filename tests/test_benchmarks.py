"""benchmarks/nmt_speed.py runs end to end on a tiny model and reports consistent figures; its decoding
FLOPs equal a count by hand."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from seqattn.config import SearchConfig
from seqattn.models import Seq2Seq
from seqattn.precision import quantize_int8

ROOT = Path(__file__).resolve().parent.parent


def test_nmt_speed_reports_training_and_decoding_mfu(small_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/nmt_speed.py"), str(ROOT / "recipes/bahdanau2015/rnnsearch.yaml"),
         f"data.root={small_corpus}", "data.corpus=.", "subword.vocab_size=250", "model.emb_dim=16",
         "model.hidden_dim=16", "model.attention_dim=16", "model.readout_dim=16", "train.batch_tokens=1000",
         "train.threads=1", "search.max_len_a=0.5", "search.max_len_b=3",
         "--steps", "1", "--warmup", "1", "--sentences", "4", "--decode-precisions", "fp32,int8", "--profile", "5", "--json", str(out)],
        check=True, cwd=ROOT, capture_output=True, text=True,
    )
    # torch.profiler's tables of the profiled update and of one beam-5 pass per decoding precision:
    # a row per op, ending with its number of calls
    ops = [row for row in run.stdout.splitlines() if "%" in row and row.split()[-1].isdigit()]
    assert len(ops) == 3 * 5 and run.stdout.count("Self CPU time total") == 3
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert all(0 < figures[f"{p}_beam5_step_share"] < 100 for p in ("fp32", "int8"))
    assert figures["decode_sentences"] == 4 and figures["torch_threads"] == 1
    assert 0 < figures["train_mfu"] < 100
    for key in ("fp32_beam1", "fp32_beam5", "int8_beam1", "int8_beam5"):
        rate = figures[f"{key}_mflop_per_sentence"] * figures[f"{key}_sentences_per_s"] / 1000
        assert abs(figures[f"{key}_gflop_per_s"] - rate) < 1e-9 * rate
        mfu = 100 * figures[f"{key}_gflop_per_s"] / figures[f"{key[:4]}_matmul_peak_gflop_per_s"]
        assert mfu > 0 and abs(figures[f"{key}_mfu"] - mfu) < 1e-9 * mfu
    # beam 5 runs the decoder over five hypotheses a sentence where greedy runs it over one
    assert figures["fp32_beam5_mflop_per_sentence"] > 1.5 * figures["fp32_beam1_mflop_per_sentence"]


class LinearDecoder(Seq2Seq):
    """y_t = argmax W E y_{t-1} that never ends (EOS is -inf): every step is one [rows, d] x [d, V]
    matmul, 2 d V FLOPs a row, the only work FlopCounterMode counts."""

    def __init__(self, V: int = 12, d: int = 8) -> None:
        super().__init__(pad_id=0, bos_id=2, eos_id=3)
        self.embed, self.out = torch.nn.Embedding(V, d), torch.nn.Linear(d, V, bias=False)

    def encode(self, src, src_mask):
        return {"rows": src_mask.float()}

    def step(self, y_prev, state):
        logits = self.out(self.embed(y_prev))
        logits[:, self.eos_id] = float("-inf")
        return logits.log_softmax(-1), None, state

    def forward(self, src, src_mask, tgt_in, need_alpha=True):
        raise NotImplementedError  # decoding only


class OneTokenTask:
    """Each line is one source token; outputs are their token ids as text."""

    def inputs(self, lines):
        return [[5] for _ in lines]

    def input_length(self, item):
        return len(item)

    def collate_inputs(self, model, items, device):
        src = torch.tensor(items, device=device)
        return src, src.ne(0)

    def text(self, hyp):
        return " ".join(map(str, hyp.tokens))


def test_decoding_flops_equal_a_hand_count():
    """Greedy search over N sentences of L steps each runs N L matmuls of 2 d V FLOPs: the benchmark's
    MFLOP per sentence is 2 L d V / 1e6, and its GFLOP/s and MFU follow from it and the timing."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from nmt_speed import decode_speed

    N, L, d, V = 6, 7, 8, 12
    search = SearchConfig(beam_size=1, max_len_a=0.0, max_len_b=L, batch_size=4)
    trainer = SimpleNamespace(cfg=SimpleNamespace(search=search), device=torch.device("cpu"), amp_dtype=None)
    rows = {key: value for key, value, _ in decode_speed(LinearDecoder(V, d), OneTokenTask(), trainer,
                                                         ["x"] * N, ["y"] * N, peak=1e9)}
    assert rows["fp32_beam1_cut_at_max_len"] == N
    assert rows["fp32_beam1_mflop_per_sentence"] == pytest.approx(2 * L * d * V / 1e6, rel=1e-12)
    gflop_per_s = rows["fp32_beam1_mflop_per_sentence"] * rows["fp32_beam1_sentences_per_s"] / 1e3
    assert rows["fp32_beam1_gflop_per_s"] == pytest.approx(gflop_per_s) and rows["fp32_beam1_mfu"] == pytest.approx(100 * gflop_per_s)
    # with int8 weights the same search counts the same FLOPs (quantized::linear_dynamic's too)
    int8 = {key: value for key, value, _ in decode_speed(quantize_int8(LinearDecoder(V, d)), OneTokenTask(), trainer,
                                                         ["x"] * N, ["y"] * N, peak=1e9, precision="int8")}
    assert int8["int8_beam1_mflop_per_sentence"] == pytest.approx(2 * L * d * V / 1e6, rel=1e-12)


def test_step_share_times_the_decoder_steps_and_unwraps_them():
    """Half of the work's time inside model.step -> 0.5; the model's step is as it was afterwards."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from nmt_speed import step_share

    class SlowStep(LinearDecoder):
        def step(self, y_prev, state):
            time.sleep(0.1)
            return super().step(y_prev, state)

    model = SlowStep()

    def work() -> None:
        model.step(torch.tensor([2]), {})
        time.sleep(0.1)

    assert step_share(model, work, torch.device("cpu")) == pytest.approx(0.5, abs=0.1)
    assert "step" not in vars(model) and model.step.__func__ is SlowStep.step


def test_decode_ab_alternates_processes_of_two_trees(tiny_transformer: Path, tmp_path: Path) -> None:
    """benchmarks/decode_ab.py imports seqattn from each tree given (here the repo, and a link to it),
    times every process it starts and prints a ratio per round."""
    link = tmp_path / "tree_b"
    link.symlink_to(ROOT)
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/decode_ab.py"), str(tiny_transformer), str(ROOT), str(link),
         "--precision", "fp32", "--rounds", "2", "--passes", "1", "--sentences", "4", "--threads", "1"],
        check=True, cwd=tmp_path, capture_output=True, text=True,
    )
    lines = run.stdout.splitlines()
    assert lines[0].startswith("cpu ") and "fp32; beam 5, 4 sentences" in lines[0]
    assert lines[1].startswith(f"{ROOT}: sentences/s median") and lines[2].startswith(f"{link}: sentences/s median")
    assert all(len(line.split("(per process ")[1].split(")")[0].split()) == 2 for line in lines[1:3])
    ratios = lines[3].split(": ")[1].split(";")[0].split()
    assert len(ratios) == 2 and all(float(r) > 0 for r in ratios)


def run_benchmark(script: str, *args: str, out: Path) -> dict:
    """A benchmark script's JSON figures (the run must succeed)."""
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(out.read_text(encoding="utf-8"))


def test_qa_speed_reports_training_and_answering(babi: Path, tmp_path: Path) -> None:
    figures = run_benchmark(
        "qa_speed.py", str(ROOT / "recipes/sukhbaatar2015/memn2n.yaml"), f"out_dir={tmp_path / 'run'}",
        f"babi.root={babi.parent}", "model.emb_dim=8", "--steps", "3", "--warmup", "1", "--questions", "8",
        out=tmp_path / "qa.json")
    assert figures["train_updates"] == 3 and figures["answer_questions"] == 8 and figures["torch_threads"] == 1
    assert all(figures[f"beam{k}_questions_per_s"] > 0 and 0 <= figures[f"beam{k}_accuracy"] <= 100 for k in (1, 5))
    assert figures["train_questions_per_s"] > 0 and "decode_precisions" not in figures


def test_caption_speed_reports_cached_and_uncached_training(tiny_flickr: Path, tmp_path: Path) -> None:
    figures = run_benchmark(
        "caption_speed.py", str(ROOT / "recipes/xu2015/soft.yaml"), f"out_dir={tmp_path / 'run'}",
        f"captions.root={tiny_flickr.parent}", f"captions.dataset={tiny_flickr.name}",
        "captions.splits={train: Flickr_8k.trainImages.txt, valid: Flickr_8k.devImages.txt}",
        "backbone.name=resnet18", "backbone.pretrained=none", "backbone.image_size=64", "backbone.grid=2",
        f"backbone.cache_dir={tmp_path / 'cache'}",
        "model.emb_dim=8", "model.hidden_dim=8", "model.attention_dim=8", "train.batch_tokens=100", "train.threads=1",
        "--steps", "2", "--warmup", "1", "--images", "3", "--beam-size", "2",
        out=tmp_path / "caption.json")
    assert figures["trainable_parameters"] < figures["parameters"]  # the CNN is frozen
    assert figures["train_cached_images_per_s"] > 0 and figures["train_uncached_images_per_s"] > 0


def test_decode_rounds_alternates_seqattn_and_ctranslate2(tiny_transformer: Path, multi30k: Path, tmp_path: Path) -> None:
    """benchmarks/peers/decode_rounds.py times both tools once a round on the same sentences and prints
    a ratio per round and their median; without the CTranslate2 model it says what to run."""
    pytest.importorskip("ctranslate2", reason="not installed: pip install 'seqattn[export]'")
    import sentencepiece

    work = tmp_path / "peers"
    cmd = [sys.executable, str(ROOT / "benchmarks/peers/decode_rounds.py"), str(tiny_transformer), "--work", str(work),
           "--rounds", "2", "--precision", "fp32", "--compute-type", "float32", "--threads", "1", "--sentences", "4",
           "--peers-python", sys.executable]
    missing = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.strip() == (
        f"decode_rounds: {work / 'ct2_seqattn'}: not found; run `make bench-peers CHECKPOINT=...` first")
    from seqattn.export import export

    export(tiny_transformer, "ctranslate2", work / "ct2_seqattn")
    sp = sentencepiece.SentencePieceProcessor(model_file=str(tiny_transformer.parent / "spm.model"))
    lines = (multi30k / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()[:4]
    (work / "test.en.sp").write_text("".join(" ".join(sp.encode(line, out_type=str)) + "\n" for line in lines),
                                     encoding="utf-8")
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split(":")[0] for line in out[:2]] == ["round 1", "round 2"]
    assert all(float(line.split("fp32 ")[1].split(",")[0]) > 0 for line in out[:2])
    assert out[2].startswith("cpu ") and "1 threads; beam 5, 4 sentences, batches of 64" in out[2]
    ratios = out[4].split(": ")[1].split(";")[0].split()
    assert len(ratios) == 2 and all(float(r) > 0 for r in ratios)


def test_step_ops_times_top_k_projections_and_int8_layers() -> None:
    """benchmarks/step_ops.py prints both top-k variants at two row counts, the three and the fused
    projections, and every int8 layer of a step with its share of the peak."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/step_ops.py"), "--rows", "40", "--d-model", "16", "--ffn", "32",
         "--vocab", "1000", "--threads", "1"], cwd=ROOT, capture_output=True, text=True, check=True)
    lines = run.stdout.splitlines()
    assert lines[0].startswith("cpu ") and "int8 matmul peak" in lines[0]
    assert [line.split(":")[0] for line in lines[1:4]] == [
        "top-10 of [40, 1000]", "top-10 of [64, 1000]", "int8 W^Q, W^K, W^V over [40, 16]"]
    layers = [line for line in lines if line.startswith("int8 linear")]
    assert [line.split(":")[0] for line in layers] == [
        "int8 linear [40, 16] -> 16", "int8 linear [40, 16] -> 48", "int8 linear [40, 16] -> 32",
        "int8 linear [40, 32] -> 16", "int8 linear [40, 16] -> 1000"]
    assert all(float(line.split(" GOP/s")[0].split()[-1]) > 0 for line in layers)


def test_train_precision_names_the_faster_matmul() -> None:
    """benchmarks/peers/train_precision.py prints bf16 exactly when its measured bf16 product beat the fp32 one."""
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks/peers/train_precision.py"), "--threads", "1", "--n", "256"],
                         capture_output=True, text=True, check=True)
    figures = run.stderr.strip().split("threads: ")[1]  # fp32 X, bf16 Y GFLOP/s
    fp32, bf16 = (float(part.split()[1]) for part in figures.removesuffix(" GFLOP/s").split(", "))
    assert fp32 > 0 and bf16 > 0
    assert run.stdout == ("bf16\n" if bf16 > fp32 else "fp32\n")
