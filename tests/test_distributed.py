"""Data parallelism: two gloo processes under torchrun make the updates of one process accumulating
two batches, resume from their checkpoint, and leave only rank 0's files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import yaml

from seqattn.training import Trainer

from test_training import assert_near, quiet, tiny_config

REPO = Path(__file__).resolve().parent.parent


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def torchrun_train(recipe: Path, *args: str) -> str:
    """`cli.py train` in two CPU processes started by torchrun -> their stderr."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "cli.py"), "train", str(recipe), *args]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stderr


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason="needs torch.distributed with the gloo backend")
def test_two_processes_equal_one_accumulating_two_batches(small_corpus: Path, tmp_path: Path) -> None:
    """7 batches an epoch: update 4 has one batch, so rank 1 makes a spare pass. The two-process run
    stops at step 3 (mid-epoch) and resumes to step 6 (past the epoch boundary). No clipping, so
    Adam's moments keep the scale of the gradients."""
    options = ("model.dropout=0.0", "train.clip_norm=0", "train.batch_tokens=2800", "train.max_steps=6",
               "train.valid_every=3", "train.valid_max_sentences=4", "train.log_every=1", "train.threads=1",
               "train.device=cpu")
    one = Trainer(tiny_config(small_corpus, tmp_path / "one", *options, "train.accumulate=2"), log=quiet)
    one.train()
    recipe = tmp_path / "ddp.yaml"
    recipe.write_text(yaml.safe_dump(tiny_config(small_corpus, tmp_path / "ddp", *options).to_dict()))
    log = torchrun_train(recipe, "train.max_steps=3")
    assert "data parallel: 2 processes (gloo), 2 batches per update" in log
    assert log.count(" parameters on cpu") == 1  # rank 1 logs nothing
    torchrun_train(recipe, "--resume")

    ddp, ref = records(tmp_path / "ddp"), records(tmp_path / "one")
    assert [r["step"] for r in ddp] == [r["step"] for r in ref] == [1, 2, 3, 3, 4, 5, 6, 6]
    for got, want in zip(ddp, ref):
        assert got.keys() == want.keys() and got["epoch"] == want["epoch"]
        for key in ("train_loss", "valid_loss", "lr"):
            if key in want:
                assert got[key] == pytest.approx(want[key], rel=1e-5), (got["step"], key)
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    best = torch.load(tmp_path / "ddp" / "best.pt", weights_only=True)
    last = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert best["model"].keys() == last["model"].keys() == one.model.state_dict().keys()  # no DDP "module." prefix
    assert [last["progress"][k] for k in ("step", "epoch", "batch_in_epoch")] == [6, 1, 4]
    for name, value in one.model.state_dict().items():
        torch.testing.assert_close(last["model"][name], value, rtol=1e-5, atol=1e-5)
    for key, want in one.optimizer.state_dict()["state"].items():  # Adam's moments sum the gradients
        assert_near(last["optimizer"]["state"][key]["exp_avg"], want["exp_avg"], 1e-4)
        assert_near(last["optimizer"]["state"][key]["exp_avg_sq"], want["exp_avg_sq"], 1e-4)
