"""Batched beam search (Sutskever et al. 2014; bookkeeping as in fairseq's sequence generator).

Every sentence keeps K alive hypotheses in rows [K * n, K * (n + 1)) of the decoder state. At each
step the 2K best of the K * V continuations are taken: EOS candidates ranked within the top K are
finalised, the K best others stay alive. A sentence is done once it has K finished hypotheses or
reaches its maximum length, where its best alive ones fill the remaining places unfinished; done
sentences leave the batch. Its hypotheses are then ranked by s(Y, X) = log p(Y | X) / lp(Y) + cp(X; Y)
(GNMT, Wu et al. 2016, eq. 14), the coverage penalty cp computed from each one's own attention.
"""
from __future__ import annotations

import torch
from torch import Tensor

from seqattn.errors import SeqattnError
from seqattn.models.base import Seq2Seq
from seqattn.state import select_state
from seqattn.search.hypothesis import (
    Hypothesis, append_step, constrain, coverage_penalty as coverage_of,
    length_penalty as penalty_of, make_hypothesis, max_output_lengths, top_k_rows,
)


def ranked_hypothesis(
    tokens: Tensor, attn: Tensor | None, row: int, src_mask: Tensor, log_prob: float, lp: float, beta: float,
    finished: bool,
) -> Hypothesis:
    """Row `row` as a Hypothesis scored log p / lp + cp (cp only for beta > 0)."""
    hyp = make_hypothesis(tokens, attn, row, src_mask, log_prob, log_prob / lp, finished)
    if beta > 0:
        hyp.score += coverage_of(hyp.alpha, beta)
    return hyp


def check_beam(beam_size: int, nbest: int, coverage_penalty: float) -> None:
    """Beam search's sizes and coverage weight, checked by beam_search and by the config
    (seqattn.search.check_options)."""
    if beam_size < 1:
        raise SeqattnError(f"search.beam_size: the beam size must be at least 1, got {beam_size}")
    if nbest < 1:
        raise SeqattnError(f"search.nbest: must be at least 1 hypothesis per input, got {nbest}")
    if nbest > beam_size:
        raise SeqattnError(f"search.nbest: {nbest} is larger than search.beam_size {beam_size}; "
                           "the n-best list comes from the beam (or sample with search.sampling)")
    if coverage_penalty < 0:
        raise SeqattnError(f"search.coverage_penalty: beta must be >= 0 (0 is off), got {coverage_penalty}")


@torch.no_grad()
def beam_search(
    model: Seq2Seq, src: Tensor, src_mask: Tensor, beam_size: int = 5, nbest: int = 1,
    length_penalty: str = "gnmt", alpha: float = 0.6, min_len: int = 0, max_len_a: float = 1.5, max_len_b: int = 10,
    coverage_penalty: float = 0.0, no_repeat_ngram: int = 0,
) -> list[list[Hypothesis]]:
    """src, src_mask: [B, S] -> for every sentence its `nbest` hypotheses, best score first.

    `coverage_penalty` is beta of cp (0: off; needs a model with attention); `no_repeat_ngram` > 0
    forbids every hypothesis to repeat an n-gram of that size.
    """
    check_beam(beam_size, nbest, coverage_penalty)
    penalty_of(1, length_penalty, alpha)  # reject an unknown penalty before decoding
    K, B = beam_size, src.size(0)
    device = src.device
    max_lens = max_output_lengths(src_mask, max_len_a, max_len_b)
    state = model.encode(src, src_mask)
    active = list(range(B))  # sentence of each active group of K rows
    # the K start rows of a sentence would be equal: the first step runs once per sentence, then its
    # output and state go to K rows (a SentenceMemory stays one row per sentence), of which only
    # beam 0 expands
    scores = torch.full((B, K), float("-inf"), device=device)  # [n, K] cumulative log p
    scores[:, 0] = 0.0
    y = torch.full((B,), model.bos_id, dtype=torch.long, device=src.device)  # [B], then [nK]
    tokens: Tensor = torch.empty(B * K, 0, dtype=torch.long, device=src.device)  # [nK, t]
    attn: Tensor | None = None  # [nK, t, S]
    final: list[list[Hypothesis]] = [[] for _ in range(B)]

    for t in range(max(max_lens)):
        n = len(active)
        log_probs, step_alpha, state = model.step(y, state)  # [nK, V], [nK, S] or None
        if t == 0:
            log_probs, step_alpha, state = select_state(
                (log_probs, step_alpha, state), torch.arange(B, device=device).repeat_interleave(K))
        if step_alpha is None and coverage_penalty > 0:
            raise SeqattnError("search.coverage_penalty: the model has no attention to measure coverage; set it to 0")
        log_probs = constrain(log_probs, model, t, min_len, tokens, no_repeat_ngram)
        attn = append_step(attn, step_alpha)  # the attention of whatever token each row emits now
        # the 2K best of a sentence's K * V continuations are among the 2K best of each row's V
        C = min(2 * K, log_probs.size(-1))
        row_log_probs, row_tok = top_k_rows(log_probs, C)  # [nK, C]
        cand = (scores.unsqueeze(-1) + row_log_probs.view(n, K, C)).view(n, K * C)
        cand_scores, cand_index = cand.topk(2 * K, dim=-1)  # [n, 2K], best first
        cand_row = cand_index.div(C, rounding_mode="floor") + K * torch.arange(n, device=device).unsqueeze(1)
        cand_tok = row_tok.view(n, K * C).gather(1, cand_index)  # [n, 2K]
        cand_eos = cand_tok.eq(model.eos_id)

        # finalise the EOS candidates ranked within the top K
        lp = penalty_of(t + 1, length_penalty, alpha)
        finalise = (cand_eos & cand_scores.isfinite())[:, :K].nonzero().tolist()
        if finalise:
            eos_scores, eos_rows = cand_scores.tolist(), cand_row.tolist()
            for i, j in finalise:
                s, row = active[i], eos_rows[i][j]
                if len(final[s]) < K:
                    log_prob = eos_scores[i][j]
                    final[s].append(
                        ranked_hypothesis(tokens, attn, row, src_mask[s], log_prob, lp, coverage_penalty, True)
                    )

        # the K best non-EOS candidates stay alive (each row adds at most one EOS, so there are K)
        alive = cand_eos.to(torch.uint8).sort(dim=-1, stable=True).indices[:, :K]  # [n, K], best first
        scores = cand_scores.gather(1, alive)  # [n, K]
        rows = cand_row.gather(1, alive).view(-1)  # [nK]
        y = cand_tok.gather(1, alive).view(-1)  # [nK]
        tokens, attn = select_state((tokens, attn), rows)
        tokens = append_step(tokens, y)

        done = [len(final[s]) >= K or t + 1 >= max_lens[s] for s in active]
        for i, s in enumerate(active):
            if done[i] and len(final[s]) < K:  # out of length: the best alive fill up, unfinished
                for row, score in zip(range(K * i, K * (i + 1)), scores[i].tolist()[: K - len(final[s])]):
                    final[s].append(
                        ranked_hypothesis(tokens, attn, row, src_mask[s], score, lp, coverage_penalty, False)
                    )
        keep = [i for i, d in enumerate(done) if not d]
        if not keep:
            break
        keep_groups = None
        if len(keep) < n:  # shrink the batch to the sentences still running
            keep_groups = torch.tensor(keep, device=device)
            keep_rows = (K * keep_groups.unsqueeze(1) + torch.arange(K, device=device)).view(-1)  # [n'K]
            scores = scores.index_select(0, keep_groups)
            y, tokens, attn, rows = select_state((y, tokens, attn, rows), keep_rows)
            active = [active[i] for i in keep]
        # reorder (and shrink) in one pass; each row's parent is of its own sentence, so a Memory
        # only needs selecting when sentences leave
        state = select_state(state, rows, within_sentences=keep_groups is None, sentences=keep_groups)

    return [sorted(hyps, key=lambda h: h.score, reverse=True)[:nbest] for hyps in final]
