"""Models behind the Seq2Seq interface; `build_model` picks one from the config's `arch`."""
from __future__ import annotations

from typing import Any

from seqattn.config import ModelConfig
from seqattn.errors import SeqattnError
from seqattn.models.base import Output, Seq2Seq
from seqattn.state import State, map_state, select_state
from seqattn.models.ensemble import Ensemble
from seqattn.models.luong import build_luong
from seqattn.models.rnn import build_rnn
from seqattn.models.show_attend_tell import build_show_attend_tell
from seqattn.models.transformer import build_transformer

__all__ = ["CAPTIONING_ARCHS", "Ensemble", "Output", "Seq2Seq", "State", "build_model", "map_state", "select_state"]

BUILDERS = {
    "rnnencdec": build_rnn, "rnnsearch": build_rnn, "luong": build_luong, "transformer": build_transformer,
    "show-attend-tell": build_show_attend_tell,
}
CAPTIONING_ARCHS = ("show-attend-tell",)  # image in, text out: the captioning task


def build_model(
    cfg: ModelConfig, src_vocab: int, tgt_vocab: int, pad_id: int, bos_id: int, eos_id: int, **image: Any,
) -> Seq2Seq:
    """`image` reaches captioning builders only: annotation_dim, backbone, grid (see build_show_attend_tell)."""
    if cfg.arch not in BUILDERS:
        raise SeqattnError(f"model.arch: unknown architecture {cfg.arch!r}; choose one of {', '.join(BUILDERS)}")
    return BUILDERS[cfg.arch](cfg, src_vocab, tgt_vocab, pad_id, bos_id, eos_id, **image)
