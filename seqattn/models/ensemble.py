"""An ensemble of models over one target vocabulary, itself a Seq2Seq that any search drives.

p(y | y_<i, x) = 1/M sum_m p_m(y | y_<i, x): the members' log-probabilities are combined as
logsumexp_m log p_m - log M, their attention (where they have one) as the mean alpha.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from seqattn.errors import SeqattnError
from seqattn.models.base import Output, Seq2Seq
from seqattn.state import State


def mean_probs(log_probs: Sequence[Tensor]) -> Tensor:
    """M log-probability tensors of one shape -> log(1/M sum_m p_m), same shape."""
    return torch.stack(list(log_probs)).logsumexp(dim=0) - math.log(len(log_probs))


def mean_attention(alphas: Sequence[Tensor | None]) -> Tensor | None:
    """The mean of the attention weights that are not None; None if all are."""
    present = [a for a in alphas if a is not None]
    return torch.stack(present).mean(dim=0) if present else None


class Ensemble(Seq2Seq):
    """Members share the target vocabulary and its pad/BOS/EOS ids; the state is the list of theirs."""

    def __init__(self, members: Sequence[Seq2Seq]) -> None:
        if not members:
            raise SeqattnError("ensemble: needs at least one model")
        ids = [(m.pad_id, m.bos_id, m.eos_id) for m in members]
        if len(set(ids)) > 1:
            raise SeqattnError(f"ensemble: members disagree on their (pad, bos, eos) ids: {ids}")
        super().__init__(*ids[0])
        self.members = nn.ModuleList(members)

    def encode(self, src: Tensor, src_mask: Tensor) -> list[State]:
        return [m.encode(src, src_mask) for m in self.members]

    def step(self, y_prev: Tensor, state: list[State]) -> tuple[Tensor, Tensor | None, list[State]]:
        """y_prev [B] -> log of the mean member probabilities [B, V], mean alpha [B, S] or None, next states."""
        log_probs, alphas, states = zip(*(m.step(y_prev, s) for m, s in zip(self.members, state)))
        return mean_probs(log_probs), mean_attention(alphas), list(states)

    def fuse_for_decoding(self) -> None:
        for m in self.members:
            m.fuse_for_decoding()

    def forward(
        self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, need_alpha: bool = True,
    ) -> Output:
        """tgt_in [B, T] -> Output(log of the mean member probabilities [B, T, V], mean alpha [B, T, S] or None).

        These log-probabilities stand in for logits: they are normalised, so softmax of them gives
        the mean probabilities back and `score` works unchanged. The members' aux is dropped: an
        ensemble decodes, it does not train.
        """
        outs = [m(src, src_mask, tgt_in, need_alpha) for m in self.members]
        log_probs = mean_probs([o.logits.log_softmax(dim=-1) for o in outs])  # [B, T, V]
        return Output(log_probs, mean_attention([o.alpha for o in outs]))
