"""Checkpoints (written atomically, read with weights_only=True: see seqattn.serialization) and the
models, configs and vocabularies rebuilt from them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from seqattn.config import Config, config_from_dict
from seqattn.errors import SeqattnError
from seqattn.models import Ensemble, Seq2Seq
from seqattn.tasks import Task, task_class
from seqattn.serialization import checked, load_checkpoint, save_checkpoint  # noqa: F401 (save_checkpoint re-exported)


def training_state(cfg: Config, model: torch.nn.Module, optimizer: Any, scheduler: Any, scaler: Any,
                   progress: object) -> dict[str, Any]:
    """Everything a run needs to resume exactly: weights, optimiser, schedule, loss scaler, RNG
    states and the progress dataclass `progress`."""
    return {
        "config": cfg.to_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
        "progress": vars(progress).copy(),
    }


def restore_training(ckpt: dict[str, Any], model: torch.nn.Module, optimizer: Any, scheduler: Any, scaler: Any) -> None:
    """Load a `training_state` back into the run's objects and the RNGs (progress is the caller's)."""
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt["scheduler"] is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(ckpt["rng"]["torch"].cpu())
    if ckpt["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["rng"]["cuda"]])


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[Seq2Seq, Config, Task]:
    """A trained model in eval mode with its config and its task's inference side (the vocabularies
    saved beside the checkpoint: task.src_tok, None for a captioning model, and task.tgt_tok)."""
    ckpt = checked(load_checkpoint(path, device), path)
    cfg = config_from_dict(ckpt["config"], source=str(path))
    task = task_class(cfg).from_run(cfg, Path(path).parent)
    model = task.build_model()
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), cfg, task


def load_models(checkpoints: list[Path], device: torch.device) -> tuple[Seq2Seq, Config, Task]:
    """The model of one checkpoint, or the ensemble of several trained on the same task and
    vocabularies; with the first one's config and task."""
    loaded = [load_model(path, device) for path in checkpoints]
    _, cfg, task = loaded[0]
    for path, (_, other_cfg, other) in zip(checkpoints[1:], loaded[1:]):
        if type(other) is not type(task):
            raise SeqattnError(f"{path}: model {other_cfg.model.arch} learns another task than {checkpoints[0]} "
                               f"({cfg.model.arch}); ensemble members must share their task")
        for side, ours, theirs in (("source", task.src_tok, other.src_tok), ("target", task.tgt_tok, other.tgt_tok)):
            if ours is not None and theirs.path.read_bytes() != ours.path.read_bytes():
                raise SeqattnError(
                    f"{path}: its {side} vocabulary {theirs.path} differs from {ours.path}; "
                    "ensemble members must share their vocabularies"
                )
    models = [model for model, *_ in loaded]
    return (models[0] if len(models) == 1 else Ensemble(models)), cfg, task
