"""Checkpoint averaging on checkpoints of tiny random models."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqattn.config import Config, ModelConfig
from seqattn.errors import SeqattnError
from seqattn.models import build_model
from seqattn.training import load_checkpoint, save_checkpoint
from seqattn.training.average import average_checkpoints, copy_subword_models

TINY = dict(arch="rnnsearch", emb_dim=8, hidden_dim=8, attention_dim=8, readout_dim=8)


def write_checkpoint(path: Path, seed: int, **model: object) -> dict[str, torch.Tensor]:
    """A trainer-like checkpoint of a tiny random model; returns its parameters."""
    torch.manual_seed(seed)
    cfg = Config(model=ModelConfig(**{**TINY, **model}))
    params = build_model(cfg.model, 20, 20, 0, 2, 3).state_dict()
    save_checkpoint({"config": cfg.to_dict(), "model": params, "optimizer": {"state": {}}, "scheduler": None}, path)
    return params


def test_average_of_two_is_their_mean(tmp_path: Path) -> None:
    a = write_checkpoint(tmp_path / "a.pt", seed=0)
    b = write_checkpoint(tmp_path / "b.pt", seed=1)
    averaged = average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])
    assert set(averaged) == {"config", "model", "averaged_from"}  # no optimizer or scheduler state
    assert averaged["config"] == load_checkpoint(tmp_path / "a.pt")["config"]
    assert averaged["model"].keys() == a.keys()
    for name, value in averaged["model"].items():
        assert value.dtype == a[name].dtype and not torch.equal(a[name], b[name])
        assert torch.allclose(value, (a[name] + b[name]) / 2, atol=1e-7)

    save_checkpoint(averaged, tmp_path / "avg.pt")
    model = build_model(ModelConfig(**TINY), 20, 20, 0, 2, 3)
    model.load_state_dict(load_checkpoint(tmp_path / "avg.pt")["model"])


def test_average_with_itself_is_itself(tmp_path: Path) -> None:
    a = write_checkpoint(tmp_path / "a.pt", seed=0)
    averaged = average_checkpoints([tmp_path / "a.pt"] * 3)
    assert all(torch.equal(averaged["model"][name], value) for name, value in a.items())


def test_different_models_are_refused(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "a.pt", seed=0)
    write_checkpoint(tmp_path / "wide.pt", seed=0, hidden_dim=16)
    with pytest.raises(SeqattnError, match=r"wide.pt: its model section differs from .*a.pt"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "wide.pt"])

    ckpt = load_checkpoint(tmp_path / "wide.pt")
    ckpt["config"] = load_checkpoint(tmp_path / "a.pt")["config"]  # same section, other shapes
    save_checkpoint(ckpt, tmp_path / "wide.pt")
    with pytest.raises(SeqattnError, match=r"wide.pt: parameter \S+ has shape"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "wide.pt"])

    save_checkpoint({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(SeqattnError, match="foreign.pt: not a seqattn checkpoint"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "foreign.pt"])
    with pytest.raises(SeqattnError, match="missing.pt: checkpoint not found"):
        average_checkpoints([tmp_path / "missing.pt"])


def test_subword_models_are_copied_beside_the_average(tmp_path: Path) -> None:
    run, out = tmp_path / "run", tmp_path / "out"
    run.mkdir()
    out.mkdir()
    write_checkpoint(run / "a.pt", seed=0)
    config = load_checkpoint(run / "a.pt")["config"]  # joint subwords: one spm.model
    with pytest.raises(SeqattnError, match="spm.model: subword model of .* not found"):
        copy_subword_models(run / "a.pt", config, out)
    (run / "spm.model").write_bytes(b"subwords")
    copy_subword_models(run / "a.pt", config, out)
    copy_subword_models(run / "a.pt", config, out)  # the same file again, or in place: nothing to do
    copy_subword_models(run / "a.pt", config, run)
    assert (out / "spm.model").read_bytes() == b"subwords"
    (run / "spm.model").write_bytes(b"other subwords")
    with pytest.raises(SeqattnError, match="a different subword model is already there"):
        copy_subword_models(run / "a.pt", config, out)
