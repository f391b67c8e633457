"""Models behind the Seq2Seq interface; `build_model` picks one from the config's `arch`."""
from __future__ import annotations

from seqattn.config import ModelConfig
from seqattn.errors import SeqattnError
from seqattn.models.base import Seq2Seq, State, map_state, select_state
from seqattn.models.rnn import build_rnn

__all__ = ["Seq2Seq", "State", "build_model", "map_state", "select_state"]

BUILDERS = {"rnnencdec": build_rnn, "rnnsearch": build_rnn}


def build_model(cfg: ModelConfig, src_vocab: int, tgt_vocab: int, pad_id: int, bos_id: int, eos_id: int) -> Seq2Seq:
    if cfg.arch not in BUILDERS:
        raise SeqattnError(f"model.arch: unknown architecture {cfg.arch!r}; choose one of {', '.join(BUILDERS)}")
    if cfg.readout_dim % 2:
        raise SeqattnError(f"model.readout_dim: must be even for maxout over pairs, got {cfg.readout_dim}")
    return BUILDERS[cfg.arch](cfg, src_vocab, tgt_vocab, pad_id, bos_id, eos_id)
