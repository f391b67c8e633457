"""Decoding over the Seq2Seq interface: greedy and beam search, blind to the model behind it."""
from __future__ import annotations

from torch import Tensor

from seqattn.config import SearchConfig
from seqattn.models.base import Seq2Seq
from seqattn.search.beam import beam_search
from seqattn.search.greedy import greedy_search
from seqattn.search.hypothesis import Hypothesis, length_penalty

__all__ = ["Hypothesis", "beam_search", "greedy_search", "length_penalty", "search"]


def search(model: Seq2Seq, src: Tensor, src_mask: Tensor, cfg: SearchConfig) -> list[list[Hypothesis]]:
    """Greedy search when beam_size == nbest == 1, else beam search; per sentence, its n-best list."""
    if cfg.beam_size == 1 and cfg.nbest == 1:
        return [[h] for h in greedy_search(model, src, src_mask, cfg.max_len_a, cfg.max_len_b, cfg.min_len)]
    return beam_search(
        model, src, src_mask, beam_size=cfg.beam_size, nbest=cfg.nbest, length_penalty=cfg.length_penalty,
        alpha=cfg.alpha, min_len=cfg.min_len, max_len_a=cfg.max_len_a, max_len_b=cfg.max_len_b,
    )
