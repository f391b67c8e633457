"""What a search returns, the GNMT length and coverage penalties, n-gram blocking, and the
bookkeeping greedy search, sampling and beam search share."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqattn.errors import SeqattnError
from seqattn.models.base import Seq2Seq

LENGTH_PENALTIES = ("none", "gnmt")


@dataclass
class Hypothesis:
    """One output sentence of a search."""

    tokens: list[int]  # generated ids, without BOS and without the final EOS
    score: float  # the ranking score: log_prob (beam search: / length penalty + coverage penalty)
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


COVERAGE_FLOOR = 1e-6  # the least coverage a source word counts with: log(1e-6) = -13.8


def coverage_penalty(alpha: Tensor, beta: float) -> float:
    """cp(X; Y) = beta * sum_i log(min(max(sum_j alpha_ij, eps), 1.0)) (GNMT, Wu et al. 2016, eq. 14).

    alpha: [T, S] attention of one hypothesis, j over its T target steps (EOS included when
    finished), i over its S real source positions. The floor eps = COVERAGE_FLOOR keeps a source
    word never attended to (exactly zero under local attention, outside every window) at a large
    finite cost instead of -inf, so hypotheses that leave words out still rank by how many.
    """
    return beta * alpha.sum(dim=0).clamp(min=COVERAGE_FLOOR, max=1.0).log().sum().item()


def max_output_lengths(src_mask: Tensor, max_len_a: float, max_len_b: float) -> list[int]:
    """Per-sentence budget int(a * |x| + b) of generated tokens (EOS included), at least 1."""
    return [max(1, int(max_len_a * n + max_len_b)) for n in src_mask.sum(dim=1).tolist()]


def constrain(log_probs: Tensor, model: Seq2Seq, t: int, min_len: int, tokens: Tensor, no_repeat_ngram: int) -> Tensor:
    """The rules every search applies at step t before choosing, in place on log_probs [N, V] (the
    step's own output): never PAD or BOS, no EOS before `min_len` tokens, no token that repeats an
    n-gram of `tokens` [N, t]."""
    banned = [model.pad_id, model.bos_id] + ([model.eos_id] if t < min_len else [])
    log_probs[:, banned] = float("-inf")
    return block_repeated_ngrams(log_probs, tokens, no_repeat_ngram)


def block_repeated_ngrams(log_probs: Tensor, tokens: Tensor, n: int) -> Tensor:
    """log_probs [N, V], in place, with -inf at every token that would complete an n-gram already in
    its row of tokens [N, t] (the generated history); unchanged for n = 0."""
    if n < 0:
        raise SeqattnError(f"search.no_repeat_ngram: must be 0 (off) or a positive n-gram size, got {n}")
    if n == 0 or tokens.size(1) < n:
        return log_probs
    ngrams = tokens.unfold(1, n, 1)  # [N, t - n + 1, n]
    prefix = tokens[:, tokens.size(1) - n + 1 :]  # [N, n - 1]: the last tokens, an n-gram with the next
    seen = ngrams[:, :, :-1].eq(prefix.unsqueeze(1)).all(dim=-1)  # [N, t - n + 1]
    rows, starts = seen.nonzero(as_tuple=True)
    log_probs[rows, ngrams[rows, starts, -1]] = float("-inf")
    return log_probs


# top_k_rows: blocks of this many columns, and the fewest rows for which blocks are used (smaller
# steps keep torch.topk); top-10 of [320, 8000] float32 log-probabilities (a beam-5 step of 64
# sentences), 2 threads of an AVX-512 CPU, three runs of benchmarks/step_ops.py: 1.0-1.1 against
# 1.9-2.7 ms, at 64 rows 0.16-0.29 against 0.35-0.51 ms
TOPK_BLOCK, TOPK_MIN_ROWS = 64, 32


def top_k_rows(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """x [N, V] -> the k largest values of each row, best first, and their columns [N, k], as
    `x.topk(k, dim=-1)` (the same values; ties may take other columns). The k largest lie in the k
    blocks of TOPK_BLOCK columns with the largest maxima (a block holding one of them has a maximum
    at least as large, and at most k blocks can), so only those k blocks and the columns after the
    last whole block are searched: a pass over x for the block maxima instead of torch's top-k over
    every column, its slowest CPU kernel in a search step."""
    N, V = x.shape
    blocks = V // TOPK_BLOCK
    if N < TOPK_MIN_ROWS or blocks <= k:
        return x.topk(k, dim=-1)
    whole = blocks * TOPK_BLOCK
    blocked = x[:, :whole].unflatten(1, (blocks, TOPK_BLOCK))  # [N, blocks, TOPK_BLOCK] (a view)
    best = blocked.amax(dim=-1).topk(k, dim=-1, sorted=False).indices  # [N, k]
    candidates = blocked[torch.arange(N, device=x.device).unsqueeze(1), best].flatten(1)  # [N, k * TOPK_BLOCK]
    if whole < V:
        candidates = torch.cat([candidates, x[:, whole:]], dim=1)  # [N, k * TOPK_BLOCK + V - whole]
    values, i = candidates.topk(k, dim=-1)  # [N, k]
    in_block = best.gather(1, (i // TOPK_BLOCK).clamp(max=k - 1)) * TOPK_BLOCK + i % TOPK_BLOCK
    return values, torch.where(i < k * TOPK_BLOCK, in_block, i - k * TOPK_BLOCK + whole)


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
