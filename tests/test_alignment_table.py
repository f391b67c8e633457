"""recipes/alignment_table.py: eflomal's rows, a row per attention of each run (alpha; a Transformer's
layers and guided head), AER and BLEU read from `seqattn evaluate`'s files, updates, and "-" where missing."""
from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

TABLE = Path(__file__).resolve().parents[1] / "recipes" / "alignment_table.py"


def fake_run(run: Path, step: int, aer: dict[str, float], bleu_gold: float, bleu_test: float) -> None:
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"step": step}))
    for choice, value in aer.items():
        (run / f"aer.{choice}.txt").write_text(f"AER {value}% (60.0%/50.0%/100)\n")
    (run / "gold.scores").write_text(f"BLEU = {bleu_gold} 10.0/2.0/0.5/0.1 (BP = 1.000)\nchrF2 = 20.0\n")
    (run / "test.scores").write_text(f"BLEU = {bleu_test} 60.0/40.0/30.0/20.0 (BP = 1.000)\n")


def test_rows_per_attention_updates_and_missing_cells(tmp_path: Path, capsys, monkeypatch):
    (tmp_path / "eflomal" / "de-en").mkdir(parents=True)
    names = ("fwd", "rev", "intersection", "grow-diag-final")
    (tmp_path / "eflomal" / "de-en" / "scores.json").write_text(json.dumps({n: {"aer": 36.04 + i} for i, n in enumerate(names)}))
    fake_run(tmp_path / "gold" / "de" / "rnnsearch", 1234, {"default": 84.8}, 0.55, 30.42)
    fake_run(tmp_path / "gold" / "fr" / "rnnsearch", 800, {"default": 70.1}, 2.41, 42.48)
    fake_run(tmp_path / "multi30k" / "fr" / "transformer-guided", 806, {"default": 68.3, "0": 71.8, "1": 70.0}, 0.39, 42.88)
    (tmp_path / "gold" / "de" / "src").write_text("a gold sentence\n")  # the gold sentences' folder holds files, not runs
    monkeypatch.setattr(sys, "argv", [str(TABLE), str(tmp_path)])
    runpy.run_path(str(TABLE), run_name="__main__")
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in capsys.readouterr().out.splitlines()[2:]]
    assert rows[0] == ["eflomal fwd", "Multi30k + gold sentences", "-", "-", "36.0", "-", "-", "-", "-", "-"]
    assert rows[3][4] == "39.0"
    models = [row for row in rows[4:] if row[0] != "eflomal"]
    assert ["transformer-guided", "Multi30k", "- / 806", "layer 1, mean of heads", "-", "70.0", "-", "0.39", "-", "42.88"] in models
    assert ["transformer-guided", "Multi30k", "- / 806", "guided head", "-", "68.3", "-", "0.39", "-", "42.88"] in models
    assert ["rnnsearch", "Multi30k + gold pairs", "1,234 / 800", "alpha", "84.8", "70.1", "0.55", "2.41", "30.42", "42.48"] in models
    assert len(models) == 4  # rows only where runs exist: the guided Transformer on Multi30k (2 layers + head), RNNsearch on gold
