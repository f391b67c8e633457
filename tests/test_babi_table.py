"""recipes/babi_table.py: per-task error, the best seed by validation, failed tasks, and --seeds."""
from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

TABLE = Path(__file__).resolve().parents[1] / "recipes" / "babi_table.py"


def fake_run(folder: Path, task: int, accuracy: float, valid: float) -> None:
    folder.mkdir(parents=True)
    (folder / "test.json").write_text(json.dumps({"accuracy": {str(task): accuracy}, "support_hits": {str(task): [90.0, 80.0, 70.0]}}))
    (folder / "train.jsonl").write_text(json.dumps({"step": 10, "valid_accuracy": valid, "elapsed": 120.0}) + "\n")
    (folder / "summary.json").write_text(json.dumps({"metric": "accuracy", "best_valid_accuracy": valid}))


def table(root: Path, *args: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    monkeypatch.setattr(sys, "argv", [str(TABLE), str(root), *args])
    runpy.run_path(str(TABLE), run_name="__main__")
    rows = [line.strip("|").split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    return {row[0].strip(): [c.strip() for c in row[1:]] for row in rows}


def test_best_seed_by_validation_and_seed_filter(tmp_path: Path, capsys, monkeypatch):
    fake_run(tmp_path / "task19" / "seed1", 19, accuracy=40.0, valid=41.0)
    fake_run(tmp_path / "task19" / "seed2", 19, accuracy=30.0, valid=35.0)
    fake_run(tmp_path / "task19" / "seed6", 19, accuracy=96.0, valid=97.0)
    fake_run(tmp_path / "task1" / "seed1", 1, accuracy=100.0, valid=100.0)
    rows = table(tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert rows["19"][:3] == ["44.7", "4.0", "3"]  # mean of 60, 70, 4; the best valid seed (6); 3 seeds
    assert rows["mean error (failed tasks)"][:2] == ["22.3 (1)", "2.0 (0)"]
    rows = table(tmp_path, "--seeds", "1,2", capsys=capsys, monkeypatch=monkeypatch)
    assert rows["19"][:3] == ["65.0", "60.0", "2"]
    assert rows["mean error (failed tasks)"][:2] == ["32.5 (1)", "30.0 (1)"]
