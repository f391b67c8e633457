"""Checkpoints (written atomically, read with weights_only=True: see seqattn.serialization) and the
models, configs and vocabularies rebuilt from them."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from seqattn.config import Config, config_from_dict
from seqattn.data.subwords import Tokenizer, subword_paths
from seqattn.data.vocab import WordVocab
from seqattn.errors import SeqattnError
from seqattn.models import CAPTIONING_ARCHS, Ensemble, Seq2Seq, build_model
from seqattn.modules.backbones import build_backbone
from seqattn.serialization import load_checkpoint, save_checkpoint  # noqa: F401 (save_checkpoint re-exported)


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


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[Seq2Seq, Config, Tokenizer | None, Any]:
    """A trained model in eval mode with its config and the vocabularies saved beside the checkpoint
    (source None for a captioning model, whose target vocabulary may be a WordVocab)."""
    ckpt = load_checkpoint(path, device)
    cfg = config_from_dict(ckpt["config"], source=str(path))
    folder = Path(path).parent
    if cfg.model.arch in CAPTIONING_ARCHS:  # no source vocabulary; the CNN's weights are in the checkpoint
        src_tok = None
        tgt_tok = WordVocab.load(folder / "vocab.json") if cfg.captions.vocab == "word" else Tokenizer(folder / "spm.model")
        backbone = build_backbone(dataclasses.replace(cfg.backbone, pretrained="none"))
        model = build_model(cfg.model, 0, len(tgt_tok), tgt_tok.pad_id, tgt_tok.bos_id, tgt_tok.eos_id,
                            backbone=backbone, grid=cfg.backbone.grid)
    else:
        src_path, tgt_path = subword_paths(folder, cfg.subword, cfg.data.src, cfg.data.tgt)
        src_tok, tgt_tok = Tokenizer(src_path), Tokenizer(tgt_path)
        model = build_model(cfg.model, len(src_tok), len(tgt_tok), src_tok.pad_id, tgt_tok.bos_id, tgt_tok.eos_id)
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), cfg, src_tok, tgt_tok


def load_models(checkpoints: list[Path], device: torch.device) -> tuple[Seq2Seq, Config, Tokenizer, Tokenizer]:
    """The translation model of one checkpoint, or the ensemble of several trained on the same
    subword models; with the first one's config and tokenisers."""
    loaded = [load_model(path, device) for path in checkpoints]
    for path, (_, cfg, src_tok, _) in zip(checkpoints, loaded):
        if src_tok is None:
            raise SeqattnError(f"{path}: model {cfg.model.arch} captions images; use `seqattn caption`")
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
