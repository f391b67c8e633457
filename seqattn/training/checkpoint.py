"""Checkpoints: written atomically (temporary file, then rename), read with weights_only=True.

A checkpoint holds only tensors and plain Python values, so `torch.load(weights_only=True)`
reads it and no arbitrary pickle is ever executed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from seqattn.config import Config, config_from_dict
from seqattn.data.subwords import Tokenizer, subword_paths
from seqattn.errors import SeqattnError
from seqattn.models import Ensemble, Seq2Seq, build_model


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write `payload` to `path` so that a crash leaves either the old or the new file, whole."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SeqattnError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise SeqattnError(f"{path}: not a readable seqattn checkpoint ({type(err).__name__}: {err})") from None


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[Seq2Seq, Config, Tokenizer, Tokenizer]:
    """A trained model in eval mode with its config and the tokenisers saved beside the checkpoint."""
    ckpt = load_checkpoint(path, device)
    cfg = config_from_dict(ckpt["config"], source=str(path))
    src_path, tgt_path = subword_paths(Path(path).parent, cfg.subword, cfg.data.src, cfg.data.tgt)
    src_tok, tgt_tok = Tokenizer(src_path), Tokenizer(tgt_path)
    model = build_model(cfg.model, len(src_tok), len(tgt_tok), src_tok.pad_id, tgt_tok.bos_id, tgt_tok.eos_id)
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), cfg, src_tok, tgt_tok


def load_models(checkpoints: list[Path], device: torch.device) -> tuple[Seq2Seq, Config, Tokenizer, Tokenizer]:
    """The model of one checkpoint, or the ensemble of several trained on the same subword models;
    with the first one's config and tokenisers."""
    loaded = [load_model(path, device) for path in checkpoints]
    _, cfg, src_tok, tgt_tok = loaded[0]
    for path, (_, _, src_other, tgt_other) in zip(checkpoints[1:], loaded[1:]):
        for side, ours, theirs in (("source", src_tok, src_other), ("target", tgt_tok, tgt_other)):
            if theirs.path.read_bytes() != ours.path.read_bytes():
                raise SeqattnError(
                    f"{path}: its {side} subword model {theirs.path} differs from {ours.path}; "
                    "ensemble members must share their vocabularies"
                )
    models = [model for model, *_ in loaded]
    return (models[0] if len(models) == 1 else Ensemble(models)), cfg, src_tok, tgt_tok
