"""Batched left-to-right decoding of one hypothesis per row, the next token picked by a strategy:
the argmax here (greedy search), a draw from the truncated distribution in sampling.py."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from seqattn.models.base import Seq2Seq
from seqattn.state import select_state
from seqattn.search.hypothesis import (
    Hypothesis, append_step, constrain, make_hypothesis, max_output_lengths,
)

Choose = Callable[[Tensor], Tensor]  # log-probabilities [N, V] -> next token ids [N]


def argmax(log_probs: Tensor) -> Tensor:
    """y_i = argmax_y log p(y | y_<i, x)."""
    return log_probs.argmax(dim=-1)


@torch.no_grad()
def decode(
    model: Seq2Seq, src: Tensor, src_mask: Tensor, choose: Choose,
    max_len_a: float = 1.5, max_len_b: int = 10, min_len: int = 0, no_repeat_ngram: int = 0,
) -> list[Hypothesis]:
    """src, src_mask: [B, S] -> one hypothesis per row, score = log_prob of the chosen tokens.

    EOS is forbidden before `min_len` tokens and tokens repeating an n-gram of size
    `no_repeat_ngram` always; `choose` sees the rest. A row still running at its maximum length
    int(max_len_a * |x| + max_len_b) is cut there (finished=False). Finished rows leave the batch.
    """
    max_lens = max_output_lengths(src_mask, max_len_a, max_len_b)
    state = model.encode(src, src_mask)
    active = list(range(src.size(0)))  # sentence of each row still decoding
    y = torch.full((len(active),), model.bos_id, dtype=torch.long, device=src.device)  # [N]
    log_prob = torch.zeros(len(active), device=src.device)  # [N]
    tokens: Tensor = torch.empty(len(active), 0, dtype=torch.long, device=src.device)  # [N, t]
    attn: Tensor | None = None  # [N, t, S]
    results: list[Hypothesis | None] = [None] * len(active)

    for t in range(max(max_lens)):
        log_probs, alpha, state = model.step(y, state)  # [N, V], [N, S] or None
        log_probs = constrain(log_probs, model, t, min_len, tokens, no_repeat_ngram)
        y = choose(log_probs)  # [N]
        log_prob = log_prob + log_probs.gather(1, y.unsqueeze(1)).squeeze(1)
        tokens, attn = append_step(tokens, y), append_step(attn, alpha)

        is_eos = y.eq(model.eos_id).tolist()
        done = [is_eos[i] or t + 1 >= max_lens[s] for i, s in enumerate(active)]
        for i, s in enumerate(active):
            if done[i]:
                kept = tokens[:, : t + 1 - is_eos[i]]  # the final EOS is not part of the output
                score = log_prob[i].item()
                results[s] = make_hypothesis(kept, attn, i, src_mask[s], score, score, is_eos[i])
        keep = [i for i, d in enumerate(done) if not d]
        if not keep:
            break
        if len(keep) < len(active):
            index = torch.tensor(keep, device=src.device)
            y, log_prob, tokens, attn, state = select_state((y, log_prob, tokens, attn, state), index, sentences=index)
            active = [active[i] for i in keep]
    return results


def greedy_search(
    model: Seq2Seq, src: Tensor, src_mask: Tensor, max_len_a: float = 1.5, max_len_b: int = 10, min_len: int = 0,
    no_repeat_ngram: int = 0,
) -> list[Hypothesis]:
    """y_i = argmax_y log p(y | y_<i, x) until EOS or the length budget: one hypothesis per sentence."""
    return decode(model, src, src_mask, argmax, max_len_a, max_len_b, min_len, no_repeat_ngram)
