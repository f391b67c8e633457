"""Decoding over the Seq2Seq interface: greedy search, sampling and beam search, blind to the model behind it."""
from __future__ import annotations

import torch
from torch import Tensor

from seqattn.config import SearchConfig
from seqattn.models.base import Seq2Seq
from seqattn.search.beam import beam_search
from seqattn.search.greedy import greedy_search
from seqattn.search.hypothesis import Hypothesis, coverage_penalty, length_penalty
from seqattn.search.sampling import sample

__all__ = ["Hypothesis", "beam_search", "coverage_penalty", "greedy_search", "length_penalty", "sample", "search"]


def search(
    model: Seq2Seq, src: Tensor, src_mask: Tensor, cfg: SearchConfig, generator: torch.Generator | None = None,
) -> list[list[Hypothesis]]:
    """Per sentence its n-best list: `nbest` samples when cfg.sampling (drawn with `generator`),
    else greedy search when beam_size == nbest == 1, else beam search."""
    common = dict(
        max_len_a=cfg.max_len_a, max_len_b=cfg.max_len_b, min_len=cfg.min_len, no_repeat_ngram=cfg.no_repeat_ngram,
    )
    if cfg.sampling:
        return sample(model, src, src_mask, nbest=cfg.nbest, temperature=cfg.temperature, top_k=cfg.top_k,
                      top_p=cfg.top_p, generator=generator, **common)
    if cfg.beam_size == 1 and cfg.nbest == 1:
        return [[h] for h in greedy_search(model, src, src_mask, **common)]
    return beam_search(
        model, src, src_mask, beam_size=cfg.beam_size, nbest=cfg.nbest, length_penalty=cfg.length_penalty,
        alpha=cfg.alpha, coverage_penalty=cfg.coverage_penalty, **common,
    )
