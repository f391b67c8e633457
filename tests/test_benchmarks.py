"""benchmarks/nmt_speed.py runs end to end on a tiny model and reports consistent figures."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_nmt_speed_reports_training_and_decoding_mfu(small_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/nmt_speed.py"), str(ROOT / "recipes/bahdanau2015/rnnsearch.yaml"),
         f"data.root={small_corpus}", "data.corpus=.", "subword.vocab_size=250", "model.emb_dim=16",
         "model.hidden_dim=16", "model.attention_dim=16", "model.readout_dim=16", "train.batch_tokens=1000",
         "train.threads=1", "search.max_len_a=0.5", "search.max_len_b=3",
         "--steps", "1", "--warmup", "1", "--sentences", "4", "--json", str(out)],
        check=True, cwd=ROOT, capture_output=True, text=True,
    )
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["decode_sentences"] == 4 and figures["torch_threads"] == 1
    assert 0 < figures["train_mfu"] < 100
    for beam in (1, 5):
        rate = figures[f"beam{beam}_mflop_per_sentence"] * figures[f"beam{beam}_sentences_per_s"] / 1000
        assert abs(figures[f"beam{beam}_gflop_per_s"] - rate) < 1e-9 * rate
        mfu = 100 * figures[f"beam{beam}_gflop_per_s"] / figures["matmul_peak_gflop_per_s"]
        assert mfu > 0 and abs(figures[f"beam{beam}_mfu"] - mfu) < 1e-9 * mfu
    # beam 5 runs the decoder over five hypotheses a sentence where greedy runs it over one
    assert figures["beam5_mflop_per_sentence"] > 1.5 * figures["beam1_mflop_per_sentence"]
