"""Batched greedy decoding: y_i = argmax_y log p(y | y_<i, x), until EOS or the length budget."""
from __future__ import annotations

import torch
from torch import Tensor

from seqattn.models.base import Seq2Seq, select_state
from seqattn.search.hypothesis import Hypothesis, append_step, forbid_eos, make_hypothesis, max_output_lengths


@torch.no_grad()
def greedy_search(
    model: Seq2Seq, src: Tensor, src_mask: Tensor, max_len_a: float = 1.5, max_len_b: int = 10, min_len: int = 0,
) -> list[Hypothesis]:
    """src, src_mask: [B, S] -> one hypothesis per sentence, score = log_prob (no normalisation).

    EOS is forbidden before `min_len` tokens; a sentence still running at its maximum length
    int(max_len_a * |x| + max_len_b) is cut there (finished=False). Finished sentences leave the batch.
    """
    max_lens = max_output_lengths(src_mask, max_len_a, max_len_b)
    state = model.encode(src, src_mask)
    active = list(range(src.size(0)))  # sentence of each row still decoding
    y = src.new_full((len(active),), model.bos_id)  # [N]
    log_prob = torch.zeros(len(active), device=src.device)  # [N]
    tokens: Tensor = src.new_empty(len(active), 0)  # [N, t]
    attn: Tensor | None = None  # [N, t, S]
    results: list[Hypothesis | None] = [None] * len(active)

    for t in range(max(max_lens)):
        log_probs, alpha, state = model.step(y, state)  # [N, V], [N, S] or None
        if t < min_len:
            log_probs = forbid_eos(log_probs, model.eos_id)
        step_log_prob, y = log_probs.max(dim=-1)  # [N], [N]
        log_prob = log_prob + step_log_prob
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
            y, log_prob, tokens, attn, state = select_state((y, log_prob, tokens, attn, state), index)
            active = [active[i] for i in keep]
    return results
