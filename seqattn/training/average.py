"""Checkpoint averaging: one model whose parameters are the mean of N checkpoints of the same model
(Vaswani et al. 2017, section 6.1, average the last checkpoints of a run)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

import torch

from seqattn.config import config_from_dict
from seqattn.data.subwords import subword_paths
from seqattn.errors import SeqattnError
from seqattn.serialization import checked
from seqattn.training.checkpoint import load_checkpoint


def average_checkpoints(paths: Sequence[Path]) -> dict[str, Any]:
    """theta = 1/N sum_n theta_n over the floating-point tensors of N checkpoints (others: the first's).

    Returns a checkpoint for `save_checkpoint` and `load_model`: the first's config and the averaged
    model; optimizer, scheduler and progress are dropped, so it cannot be resumed.
    """
    if not paths:
        raise SeqattnError("average: give at least one checkpoint")
    first = checked(load_checkpoint(paths[0]), paths[0])
    total = {name: v.double() if v.is_floating_point() else v for name, v in first["model"].items()}
    for path in paths[1:]:
        ckpt = checked(load_checkpoint(path), path)
        if ckpt["config"]["model"] != first["config"]["model"]:
            raise SeqattnError(f"{path}: its model section differs from {paths[0]}'s; average checkpoints of one model")
        params: dict[str, torch.Tensor] = ckpt["model"]
        if params.keys() != total.keys():
            names = sorted(params.keys() ^ total.keys())
            raise SeqattnError(f"{path}: parameters {', '.join(names)} are in only one of it and {paths[0]}")
        for name, value in params.items():
            if value.shape != total[name].shape:
                raise SeqattnError(
                    f"{path}: parameter {name} has shape {tuple(value.shape)}, in {paths[0]} {tuple(total[name].shape)}"
                )
            if value.is_floating_point():
                total[name] += value
    model = {
        name: (v / len(paths)).to(first["model"][name].dtype) if v.is_floating_point() else v
        for name, v in total.items()
    }
    return {"config": first["config"], "model": model, "averaged_from": [str(p) for p in paths]}


def copy_subword_models(checkpoint: Path, config: dict[str, Any], out_dir: Path) -> None:
    """Copy the subword model(s) of `config` from beside `checkpoint` into `out_dir`, so that a
    checkpoint written there loads with `load_model`; an existing different file there is an error."""
    cfg = config_from_dict(config, source=str(checkpoint))
    for src in dict.fromkeys(subword_paths(Path(checkpoint).parent, cfg.subword, cfg.data.src, cfg.data.tgt)):
        dst = Path(out_dir) / src.name
        if not src.is_file():
            raise SeqattnError(f"{src}: subword model of {checkpoint} not found")
        if dst.exists() and dst.resolve() == src.resolve():
            continue
        if dst.exists() and dst.read_bytes() != src.read_bytes():
            raise SeqattnError(f"{dst}: a different subword model is already there; write the average elsewhere")
        shutil.copyfile(src, dst)
