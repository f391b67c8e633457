"""What a search returns, the GNMT length penalty, and the bookkeeping greedy and beam search share."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqattn.errors import SeqattnError

LENGTH_PENALTIES = ("none", "gnmt")


@dataclass
class Hypothesis:
    """One output sentence of a search."""

    tokens: list[int]  # generated ids, without BOS and without the final EOS
    score: float  # the ranking score: log_prob, divided by the length penalty when asked
    log_prob: float  # sum of token log-probs, EOS included when finished
    alpha: Tensor | None  # [len(tokens) + finished, S_i] over the real source positions; None without attention
    finished: bool  # ended with EOS; False: cut at the maximum length


def length_penalty(length: int, kind: str, alpha: float) -> float:
    """lp(Y) = ((5 + |Y|) / 6)^alpha (GNMT, Wu et al. 2016, eq. 14); 1 for "none".

    `length` counts the generated tokens, EOS included.
    """
    if kind == "none":
        return 1.0
    if kind == "gnmt":
        return ((5.0 + length) / 6.0) ** alpha
    raise SeqattnError(f"search.length_penalty: unknown {kind!r}; choose one of {', '.join(LENGTH_PENALTIES)}")


def max_output_lengths(src_mask: Tensor, max_len_a: float, max_len_b: float) -> list[int]:
    """Per-sentence budget int(a * |x| + b) of generated tokens (EOS included), at least 1."""
    return [max(1, int(max_len_a * n + max_len_b)) for n in src_mask.sum(dim=1).tolist()]


def forbid_eos(log_probs: Tensor, eos_id: int) -> Tensor:
    """log_probs [N, V] with EOS at -inf (a copy: the model's tensor is left alone)."""
    log_probs = log_probs.clone()
    log_probs[:, eos_id] = float("-inf")
    return log_probs


def append_step(history: Tensor | None, new: Tensor | None) -> Tensor | None:
    """history [N, t, *] (None before the first step) + new [N, *] -> [N, t + 1, *]; None if `new` is."""
    if new is None:
        return None
    new = new.unsqueeze(1)
    return new if history is None else torch.cat([history, new], dim=1)


def make_hypothesis(
    tokens: Tensor, attn: Tensor | None, row: int, src_mask: Tensor, log_prob: float, score: float, finished: bool,
) -> Hypothesis:
    """Row `row` of tokens [N, T] (no EOS) and attn [N, T + finished, S] (padded batch), src_mask [S]."""
    alpha = None if attn is None else attn[row][:, src_mask].float().cpu()  # [T + finished, S_i]
    return Hypothesis(tokens[row].tolist(), score, log_prob, alpha, finished)
