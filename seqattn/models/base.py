"""The one encoder-decoder interface every model implements and every search drives.

A model encodes a batch once into a decoder `State` (seqattn.state) that search advances with
`step`, never asking which model it drives.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.errors import SeqattnError
from seqattn.state import State


class Output(NamedTuple):
    """What teacher-forced `forward` returns: all that `loss` needs besides the targets, so that
    nothing passes from `forward` to `loss` through the module."""

    logits: Tensor  # [B, T, V]
    alpha: Tensor | None  # [B, T, S] attention over the source, None without attention (or need_alpha=False)
    aux: dict[str, Tensor] = {}  # what else a model's loss needs (hard attention: locations s [B, T], sampled [B])


class Guide(NamedTuple):
    """Guided alignment (Chen et al. 2016; Garg et al. 2019): the target distribution of the attention
    and its weight lambda in L = L_nll + lambda L_align."""

    target: Tensor  # [B, T, S] per tgt_out token a distribution over the source tokens; all zero: no link
    weight: float


def alignment_loss(alpha: Tensor, target: Tensor) -> Tensor:
    """Summed cross-entropy between each target token's alignment distribution and its attention,
    L_align = -sum_t sum_s target_ts log alpha_ts (Garg et al. 2019, sec. 4.2, summed over tokens as
    the NLL is). alpha, target [B, T, S]. A row without links is zero and gives no gradient; weights
    that are exactly 0 (masked, outside a local window) count as 1e-9."""
    return -(target * alpha.float().clamp(min=1e-9).log()).sum()


class TrainingHooks:
    """What the trainer calls on any model besides forward and loss (all no-ops by default): per-update
    statistics and what follows validation. Seq2Seq and the image classifier share them."""

    def batch_stats(self, out: Output, tgt_out: Tensor) -> dict[str, Tensor]:
        """Sums over the batch of `out` that `end_update` takes, summed over all batches of the update
        on every process. The keys must not depend on the batch (every process sends the same). Empty
        by default."""
        return {}

    def after_validation(self, metrics: dict[str, float], epochs: float) -> bool:
        """After each validation, with its metrics (valid_loss, the task's metric) and the epochs trained
        so far (fractional): change what a training schedule of the model's own follows (MemN2N's
        linear start). True when the model now computes something else and training recommences: the
        trainer then restarts its best metric, early stopping and plateau schedule. False by default."""
        return False

    def end_update(self, stats: dict[str, float]) -> None:
        """After each optimiser update, with `batch_stats` summed over the whole update: move what is
        estimated per update (hard attention's baseline). Nothing by default."""


class Seq2Seq(nn.Module, TrainingHooks, ABC):
    """Encoder-decoder over token ids.

    Token conventions: `src` ends with EOS; decoding starts from BOS; `pad_id` fills both sides.
    """

    def __init__(self, pad_id: int, bos_id: int, eos_id: int) -> None:
        super().__init__()
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    @abstractmethod
    def encode(self, src: Tensor, src_mask: Tensor) -> State:
        """src: [B, S] ids, src_mask: [B, S] True at real tokens -> initial decoder state."""

    @abstractmethod
    def step(self, y_prev: Tensor, state: State) -> tuple[Tensor, Tensor | None, State]:
        """One decoder step.

        y_prev: [B] previous target ids -> log-probabilities [B, V], attention weights alpha
        [B, S] over the source (None for a model without attention), and the next state. The
        log-probabilities are a new tensor of this step: search edits them in place.
        """

    @abstractmethod
    def forward(
        self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, need_alpha: bool = True,
    ) -> Output:
        """Teacher forcing: tgt_in [B, T] (BOS + target) -> Output(logits [B, T, V], alpha [B, T, S] or None, aux).

        need_alpha=False lets a model skip work that only the weights need (training does not).
        """

    def nll(self, logits: Tensor, tgt_out: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Summed token cross-entropy with label smoothing, padding ignored (logits [B, T, V], tgt_out [B, T])."""
        return F.cross_entropy(
            logits.flatten(0, 1).float(), tgt_out.flatten(), ignore_index=self.pad_id,
            label_smoothing=label_smoothing, reduction="sum",
        )

    def loss(self, out: Output, tgt_out: Tensor, label_smoothing: float, guide: Guide | None = None) -> Tensor:
        """Summed training loss of `forward`'s output `out` for targets tgt_out [B, T]: `nll`, plus the
        regulariser of a model that has one (doubly stochastic attention, REINFORCE), plus with `guide`
        lambda times the alignment loss of out.alpha (run forward with need_alpha=True)."""
        nll = self.nll(out.logits, tgt_out, label_smoothing)
        return nll if guide is None else nll + guide.weight * alignment_loss(out.alpha, guide.target)

    def fuse_for_decoding(self) -> None:
        """Merge weights that decoding multiplies with one input (the Transformer's self-attention
        projections), once the model is loaded for decoding only; nothing by default."""

    def attention_shape(self) -> tuple[int, int]:
        """(layers, heads) of the attention `cross_attention` gives: one alpha by default."""
        return 1, 1

    def alpha_choice(self) -> tuple[int, int]:
        """The (layer, head) of `cross_attention` that `forward` reports as alpha (head -1: the average)."""
        return 0, -1

    def cross_attention(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing over tgt_in [B, T] -> the attention over the source of every layer and head
        [B, L, H, T, S]; by default forward's alpha as one layer of one head."""
        alpha = self(src, src_mask, tgt_in).alpha  # [B, T, S]
        if alpha is None:
            raise SeqattnError(f"model {type(self).__name__} has no attention over its source")
        return alpha[:, None, None]

    @torch.no_grad()
    def score(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, tgt_out: Tensor) -> Tensor:
        """Sum of log p(tgt_out | src) per sentence [B], padding ignored."""
        logp = self(src, src_mask, tgt_in).logits.log_softmax(-1)
        token_logp = logp.gather(-1, tgt_out.unsqueeze(-1)).squeeze(-1)  # [B, T]
        return token_logp.masked_fill(tgt_out.eq(self.pad_id), 0.0).sum(-1)
