"""Show, Attend and Tell (Xu et al. 2015): captioning with soft or hard attention over a CNN's
annotation grid, trained with the doubly stochastic regulariser and, for hard attention, REINFORCE.

`src` is the annotation grid a [B, L, D] (cached CNN features) or images [B, 3, H, W] that the
model's own backbone turns into one; `src_mask` [B, L] is all True.

Hard attention (sec. 4.1). A training `forward` draws, per caption, whether it uses the expected
context (probability `expected_context`, the paper's 0.5) or samples s_t ~ Multinoulli(alpha_t) at
every step; its output carries the draws (aux "locations" s [B, T], "sampled" [B]) to `loss`, which
adds the REINFORCE surrogate of eq. 12 for the sampled captions. The baseline b moves once per
optimiser update, by the mean reward of all the update's sampled captions on every process
(`batch_stats`, `end_update`). In eval mode (validation, search) every caption uses the expected
context, deterministic as search needs; the authors' generate_caps.py does the same by default
(sampling=False: alpha_sample = alpha).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.config import ModelConfig
from seqattn.errors import SeqattnError
from seqattn.models.base import Guide, Output, Seq2Seq
from seqattn.state import State
from seqattn.modules import backbones
from seqattn.modules.attention import AdditiveAttention
from seqattn.modules.decoders.show_attend_tell import ShowAttendTellDecoder

ATTEND = ("soft", "hard")


def doubly_stochastic_penalty(alpha: Tensor, steps: Tensor) -> Tensor:
    """sum_i (1 - sum_t alpha_ti)^2 per caption (eq. 14), t over its real steps.

    alpha [B, T, L], steps [B, T] True at real (non-pad) steps -> [B].
    """
    coverage = (alpha * steps.unsqueeze(-1)).sum(1)  # sum_t alpha_ti [B, L]
    return (1.0 - coverage).square().sum(-1)


class ShowAttendTell(Seq2Seq):
    """An optional image CNN, then the attentive LSTM decoder; `attend` picks soft or hard attention."""

    def __init__(
        self, decoder: ShowAttendTellDecoder, pad_id: int, bos_id: int, eos_id: int, attend: str = "soft",
        doubly_stochastic: float = 1.0, entropy_bonus: float = 0.01, baseline_decay: float = 0.9,
        expected_context: float = 0.5, backbone: nn.Module | None = None, grid: int = 0,
    ) -> None:
        super().__init__(pad_id, bos_id, eos_id)
        self.decoder, self.backbone, self.grid = decoder, backbone, grid
        self.attend, self.expected_context = attend, expected_context
        self.doubly_stochastic, self.entropy_bonus, self.baseline_decay = doubly_stochastic, entropy_bonus, baseline_decay
        self.register_buffer("baseline", torch.zeros(()))  # b: moving average of log p(y | s, a)

    def annotate(self, src: Tensor) -> Tensor:
        """Images [B, 3, H, W] through the backbone, or annotations (cached: maybe float16) -> a [B, L, D]
        in float32."""
        if src.dim() == 3:
            return src.float()
        if self.backbone is None:
            raise SeqattnError("model: got images but the model has no backbone; build it with build_model(..., backbone=...)")
        return backbones.annotations(self.backbone(src), self.grid)  # [B, D, h, w] -> [B, L, D]

    def encode(self, src: Tensor, src_mask: Tensor) -> State:
        return self.decoder.init_state(self.annotate(src), src_mask)

    def step(self, y_prev: Tensor, state: State) -> tuple[Tensor, Tensor, State]:
        return self.decoder.step(y_prev, state)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, need_alpha: bool = True) -> Output:
        """As Seq2Seq.forward; alpha [B, T, L] is always returned (the regulariser needs it). A hard-attention
        training forward adds its draws to aux: "locations" s [B, T] and "sampled" [B]."""
        state = self.encode(src, src_mask)
        if not (self.training and self.attend == "hard"):
            return Output(*self.decoder(tgt_in, state))
        sampled = torch.rand(tgt_in.size(0), device=tgt_in.device) >= self.expected_context  # [B]
        logits, alpha, aux = self.decoder(tgt_in, state, sampled)
        return Output(logits, alpha, {**aux, "sampled": sampled})

    def loss(self, out: Output, tgt_out: Tensor, label_smoothing: float, guide: Guide | None = None) -> Tensor:
        """Summed cross-entropy (with `guide`, plus its alignment loss) + lambda * doubly stochastic
        penalty (eq. 14) + for a hard-attention training output the REINFORCE surrogate (eq. 12), all
        summed over the batch."""
        steps = tgt_out.ne(self.pad_id)  # [B, T]
        total = super().loss(out, tgt_out, label_smoothing, guide)
        if self.doubly_stochastic > 0:
            total = total + self.doubly_stochastic * doubly_stochastic_penalty(out.alpha.float(), steps).sum()
        if "sampled" in out.aux:
            total = total + self.reinforce(out, tgt_out, steps)
        return total

    def reward(self, logits: Tensor, tgt_out: Tensor) -> Tensor:
        """r = log p(y | s, a) per caption [B], a constant (logits [B, T, V], tgt_out [B, T])."""
        token_nll = F.cross_entropy(logits.detach().float().transpose(1, 2), tgt_out, ignore_index=self.pad_id,
                                    reduction="none")  # [B, T]
        return -token_nll.sum(-1)

    def reinforce(self, out: Output, tgt_out: Tensor, steps: Tensor) -> Tensor:
        """Surrogate whose gradient is eq. 12's attention terms for the sampled captions:
        -(r - b) sum_t log p(s_t | a) - lambda_e sum_t H[alpha_t], r = log p(y | s, a) (a constant).
        Written as x - x.detach() it is worth 0, so the reported loss stays NLL + regulariser."""
        s, sampled, alpha = out.aux["locations"], out.aux["sampled"], out.alpha.float()
        r = self.reward(out.logits, tgt_out)  # [B]
        log_p_s = alpha.gather(-1, s.unsqueeze(-1)).squeeze(-1).log().masked_fill(~steps, 0.0)  # [B, T]
        entropy = -torch.special.xlogy(alpha, alpha).sum(-1).masked_fill(~steps, 0.0)  # H[alpha_t] [B, T]
        surrogate = -(r - self.baseline) * log_p_s.sum(-1) - self.entropy_bonus * entropy.sum(-1)  # [B]
        surrogate = surrogate - surrogate.detach()
        return torch.where(sampled, surrogate, 0.0).sum()

    def batch_stats(self, out: Output, tgt_out: Tensor) -> dict[str, Tensor]:
        """For a hard-attention training output: the sum of the sampled captions' rewards r and their number."""
        if "sampled" not in out.aux:
            return {}
        sampled = out.aux["sampled"]  # [B]
        return {"reward": torch.where(sampled, self.reward(out.logits, tgt_out), 0.0).sum(), "sampled": sampled.sum()}

    def end_update(self, stats: dict[str, float]) -> None:
        """b <- decay * b + (1 - decay) * mean r over the update's sampled captions; an update without
        any leaves b as it is."""
        if stats.get("sampled", 0) > 0:
            mean_r = stats["reward"] / stats["sampled"]
            self.baseline.copy_(self.baseline_decay * self.baseline + (1.0 - self.baseline_decay) * mean_r)


def build_show_attend_tell(
    cfg: ModelConfig, src_vocab: int, tgt_vocab: int, pad_id: int, bos_id: int, eos_id: int,
    annotation_dim: int = 0, backbone: nn.Module | None = None, grid: int = 0,
) -> ShowAttendTell:
    """src_vocab is unused (the source is an image). D is the backbone's `out_channels` when a
    backbone is given (images in), else `annotation_dim` (cached annotation grids in)."""
    if cfg.attend not in ATTEND:
        raise SeqattnError(f"model.attend: unknown {cfg.attend!r}; choose one of {', '.join(ATTEND)}")
    if not 0.0 <= cfg.expected_context <= 1.0:
        raise SeqattnError(f"model.expected_context: a probability in [0, 1], got {cfg.expected_context}")
    if not 0.0 <= cfg.baseline_decay < 1.0:
        raise SeqattnError(f"model.baseline_decay: must be in [0, 1), got {cfg.baseline_decay}")
    D = backbone.out_channels if backbone is not None else annotation_dim
    if D <= 0:
        raise SeqattnError("model.arch: show-attend-tell needs the annotation size; pass annotation_dim or backbone")
    decoder = ShowAttendTellDecoder(
        tgt_vocab, cfg.emb_dim, cfg.hidden_dim, D, pad_id, cfg.dropout,
        AdditiveAttention(cfg.hidden_dim, D, cfg.attention_dim), cfg.gate,
    )
    return ShowAttendTell(
        decoder, pad_id, bos_id, eos_id, cfg.attend, cfg.doubly_stochastic, cfg.entropy_bonus,
        cfg.baseline_decay, cfg.expected_context, backbone, grid,
    )
