"""Where local attention looks: the aligned positions p_t of Luong et al. (2015, sec. 3.2) over a
forced pass, scored against human word alignments.

local-p predicts p_t = S sigmoid(v_p^T tanh(W_p h_t)) (eq. 9) and local-m takes p_t = t; either way
the context is read from the window [p_t - D, p_t + D]. Against gold links, each target piece whose
word has sure links counts once, its gold pieces being the source pieces of the words it is linked to:

- `relative`: the mean of p_t / S, where in the source the window sits (1: at its end);
- `in_window`: the share of those pieces with a gold piece inside the window, |s - p_t| <= D;
- `distance`: the mean distance, in pieces, from p_t to the nearest gold piece;
- `at_end`: the share with p_t / S above 0.98 or below 0.02, where eq. 9's sigmoid is saturated and
  passes almost no gradient.

`reference_positions` gives two positions that need no model, local-m's p_t = t (capped at the last
source piece) and the diagonal p_t = t S / T, to read the model's figures against.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

from seqattn.alignment.attention import Pieces, forced_batches
from seqattn.errors import SeqattnError
from seqattn.evaluation.alignment import Gold
from seqattn.models import Seq2Seq
from seqattn.modules.attention import LocalAttention

SATURATED = 0.02  # p_t / S within this of 0 or 1: sigmoid'(x) = s (1 - s) < 0.02


@dataclass
class PositionScore:
    steps: int  # target pieces with sure gold links
    relative: float  # mean p_t / S
    in_window: float  # x100
    distance: float  # pieces
    at_end: float  # x100


def local_attention(model: Seq2Seq) -> LocalAttention:
    """The model's local attention, or a one-line error naming what it has instead."""
    attention = getattr(getattr(model, "decoder", None), "attention", None)
    if not isinstance(attention, LocalAttention):
        raise SeqattnError(f"model {type(model).__name__} has no local attention (model.alignment local-m or local-p)")
    return attention


@contextmanager
def recorded_positions(attention: LocalAttention) -> Iterator[list[Tensor]]:
    """Within the block, p_t [B] of every step the attention takes is appended to the list yielded."""
    positions: list[Tensor] = []

    def record(module: LocalAttention, args: tuple, output: tuple[Tensor, Tensor]) -> None:
        query, _, _, mask, t = args  # h_t [B, Dq], keys, values, mask [B, S], t [B]
        length = mask.sum(-1, keepdim=True).to(query.dtype)  # S [B, 1]
        positions.append(module.position(query.unsqueeze(1), t.unsqueeze(1), length).squeeze(1))

    handle = attention.register_forward_hook(record)
    try:
        yield positions
    finally:
        handle.remove()


@torch.no_grad()
def forced_positions(model: Seq2Seq, sources: list[Pieces], targets: list[Pieces], batch_size: int,
                     device: torch.device) -> list[Tensor]:
    """Per sentence pair, p_t [T] (float32) of each target piece (the EOS step dropped) over a forced pass."""
    attention = local_attention(model)
    model.eval()
    result: list[Tensor] = [torch.empty(0)] * len(sources)
    for chunk, batch in forced_batches(model, sources, targets, batch_size, device):
        with recorded_positions(attention) as steps:
            model(batch.src, batch.src_mask, batch.tgt_in)
        p = torch.stack(steps, dim=1).float().cpu()  # [B, T + 1]
        for row, k in enumerate(chunk):
            result[k] = p[row, : len(targets[k].ids)]
    return result


def reference_positions(sources: list[Pieces], targets: list[Pieces]) -> dict[str, list[Tensor]]:
    """local-m's p_t = t (at most S - 1, S counting the source EOS) and the diagonal t S / T, per sentence."""
    monotonic, diagonal = [], []
    for s, t in zip(sources, targets):
        steps = torch.arange(len(t.ids), dtype=torch.float32)
        monotonic.append(steps.clamp(max=len(s.ids)))  # the EOS piece is source position len(s.ids)
        diagonal.append(steps * (len(s.ids) + 1) / (len(t.ids) + 1))
    return {"p_t = t (local-m)": monotonic, "p_t = t S / T (diagonal)": diagonal}


def position_score(positions: list[Tensor], sources: list[Pieces], targets: list[Pieces], gold: list[Gold],
                   window: int) -> PositionScore:
    """Score p_t (per sentence [T] over target pieces) against the sure gold links (source word, target word)."""
    if len(gold) != len(sources):
        raise SeqattnError(f"gold alignments: {len(gold)} sentences, but {len(sources)} sentence pairs were given")
    relative, hits, distances, ends = [], [], [], []
    for p, s, t, g in zip(positions, sources, targets, gold):
        length = len(s.ids) + 1  # S counts the source EOS, as the model's mask does
        linked: dict[int, list[int]] = {}
        for i, j in g.sure:
            linked.setdefault(j, []).extend(k for k, word in enumerate(s.words) if word == i)
        for step, word in enumerate(t.words):
            pieces = linked.get(word)
            if not pieces:
                continue
            nearest = (torch.tensor(pieces, dtype=torch.float32) - p[step]).abs().min().item()
            share = p[step].item() / length
            relative.append(share)
            hits.append(nearest <= window)
            distances.append(nearest)
            ends.append(share < SATURATED or share > 1 - SATURATED)
    n = len(relative)
    if n == 0:
        raise SeqattnError("gold alignments: no target word with a sure link; check --reverse-gold and the files' order")
    return PositionScore(n, sum(relative) / n, 100 * sum(hits) / n, sum(distances) / n, 100 * sum(ends) / n)
