"""Ancestral sampling with temperature, top-k and nucleus (top-p) truncation (Holtzman et al. 2020,
section 3), run by greedy search's loop with a draw in place of the argmax."""
from __future__ import annotations

import torch
from torch import Tensor

from seqattn.errors import SeqattnError
from seqattn.models.base import Seq2Seq
from seqattn.search.greedy import decode
from seqattn.search.hypothesis import Hypothesis


def truncate(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """logits [N, V] with -inf outside the allowed tokens: the k most likely (0: all; ties at the
    k-th are kept), then the nucleus V^(p), the smallest set of most likely tokens whose probability
    sum_{y in V^(p)} p(y | y_<i, x) >= p (Holtzman et al. 2020, section 3.1; 1: all)."""
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]  # [N, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        probs, order = logits.softmax(dim=-1).sort(dim=-1, descending=True)  # [N, V] most likely first
        outside = (probs.cumsum(dim=-1) - probs) >= top_p  # the more likely tokens already reach p
        logits = logits.masked_fill(outside.scatter(-1, order, outside), float("-inf"))  # back in vocabulary order
    return logits


def check_sampling(temperature: float, top_k: int, top_p: float) -> None:
    """Sampling's options, checked by Sampler and by the config (seqattn.search.check_options)."""
    if not temperature > 0:
        raise SeqattnError(f"search.temperature: must be > 0, got {temperature} (for greedy search: no sampling)")
    if top_k < 0:
        raise SeqattnError(f"search.top_k: must be 0 (off) or a positive number of tokens, got {top_k}")
    if not 0 < top_p <= 1:
        raise SeqattnError(f"search.top_p: must be in (0, 1] (1 is off), got {top_p}")


class Sampler:
    """The `decode` strategy y_i ~ softmax(truncate(log p(y | y_<i, x) / temperature)), drawn with
    `generator` (torch's global one when None) for reproducible samples."""

    def __init__(
        self, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, generator: torch.Generator | None = None,
    ) -> None:
        check_sampling(temperature, top_k, top_p)
        self.temperature, self.top_k, self.top_p, self.generator = temperature, top_k, top_p, generator

    def __call__(self, log_probs: Tensor) -> Tensor:
        """log_probs [N, V] -> sampled ids [N]."""
        logits = truncate(log_probs / self.temperature, self.top_k, self.top_p)
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=self.generator).squeeze(1)


def sample(
    model: Seq2Seq, src: Tensor, src_mask: Tensor, nbest: int = 1, temperature: float = 1.0, top_k: int = 0,
    top_p: float = 1.0, generator: torch.Generator | None = None, max_len_a: float = 1.5, max_len_b: int = 10,
    min_len: int = 0, no_repeat_ngram: int = 0,
) -> list[list[Hypothesis]]:
    """src, src_mask: [B, S] -> for every sentence `nbest` independent samples, highest log_prob first.

    Each hypothesis's log_prob (and score) is the model's, before temperature and truncation.
    """
    if nbest < 1:
        raise SeqattnError(f"search.nbest: need at least 1 sample per sentence, got {nbest}")
    sampler = Sampler(temperature, top_k, top_p, generator)
    rows = torch.arange(src.size(0), device=src.device).repeat_interleave(nbest)  # [B * nbest]
    hyps = decode(model, src[rows], src_mask[rows], sampler, max_len_a, max_len_b, min_len, no_repeat_ngram)
    return [sorted(hyps[i : i + nbest], key=lambda h: h.log_prob, reverse=True) for i in range(0, len(hyps), nbest)]
