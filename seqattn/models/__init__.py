"""Models behind the Seq2Seq interface; `build_model` builds the one the config's `arch` names in
seqattn.registry."""
from __future__ import annotations

from typing import Any

from seqattn.config import ModelConfig
from seqattn.models.base import Guide, Output, Seq2Seq, alignment_loss
from seqattn.models.ensemble import Ensemble
from seqattn.registry import arch, load
from seqattn.state import State, map_state, select_state

__all__ = ["Ensemble", "Guide", "Output", "Seq2Seq", "State", "alignment_loss", "build_model", "map_state", "select_state"]


def build_model(
    cfg: ModelConfig, src_vocab: int, tgt_vocab: int, pad_id: int, bos_id: int, eos_id: int, **extras: Any,
) -> Seq2Seq:
    """`extras` are what the architecture's task adds (captioning: backbone, grid)."""
    return load(arch(cfg.arch).builder)(cfg, src_vocab, tgt_vocab, pad_id, bos_id, eos_id, **extras)
