"""Decoding over the Seq2Seq interface: greedy search, sampling and beam search, blind to the model behind it."""
from __future__ import annotations

import torch
from torch import Tensor

from seqattn.config import SearchConfig
from seqattn.models.base import Seq2Seq
from seqattn.errors import SeqattnError
from seqattn.search.beam import beam_search, check_beam
from seqattn.search.greedy import greedy_search
from seqattn.search.hypothesis import Hypothesis, coverage_penalty, length_penalty
from seqattn.search.sampling import check_sampling, sample

__all__ = ["Hypothesis", "beam_search", "check_options", "coverage_penalty", "greedy_search", "length_penalty",
           "sample", "search"]


def check_options(cfg: SearchConfig) -> None:
    """Every search option, before any decoding (the config's validation and the CLI's options run it);
    the searches check their own arguments with the same functions."""
    samples_may_outnumber_the_beam = min(cfg.nbest, cfg.beam_size) if cfg.sampling else cfg.nbest
    check_beam(cfg.beam_size, samples_may_outnumber_the_beam, cfg.coverage_penalty)
    check_sampling(cfg.temperature, cfg.top_k, cfg.top_p)
    length_penalty(1, cfg.length_penalty, cfg.alpha)  # an unknown penalty is an error
    if cfg.batch_size < 1:
        raise SeqattnError(f"search.batch_size: must be at least 1, got {cfg.batch_size}")
    for name in ("alpha", "min_len", "max_len_a", "no_repeat_ngram"):
        if getattr(cfg, name) < 0:
            raise SeqattnError(f"search.{name}: must be >= 0 (0 is off), got {getattr(cfg, name)}")


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
