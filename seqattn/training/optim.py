"""Optimiser and learning-rate schedules."""
from __future__ import annotations

from torch import nn, optim

from seqattn.config import TrainConfig
from seqattn.errors import SeqattnError


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> optim.Optimizer:
    return optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


class InverseSqrt:
    """Warmup then inverse square root (Vaswani et al. 2017, eq. 3, relative to train.lr):
    factor(step) = min(step / warmup, sqrt(warmup / step))."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup = max(1, warmup_steps)

    def __call__(self, step: int) -> float:
        step = max(1, step)
        return min(step / self.warmup, (self.warmup / step) ** 0.5)


def build_scheduler(
    cfg: TrainConfig, optimizer: optim.Optimizer, higher_is_better: bool = True,
) -> optim.lr_scheduler.LRScheduler | optim.lr_scheduler.ReduceLROnPlateau | None:
    """`plateau` steps on the task's validation metric (in its direction); `inverse_sqrt` after every update."""
    if cfg.schedule == "constant":
        return None
    if cfg.schedule == "plateau":
        return optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if higher_is_better else "min", factor=cfg.plateau_factor, patience=cfg.plateau_patience, min_lr=cfg.min_lr
        )
    if cfg.schedule == "inverse_sqrt":
        return optim.lr_scheduler.LambdaLR(optimizer, InverseSqrt(cfg.warmup_steps))
    raise SeqattnError(f"train.schedule: {cfg.schedule!r} is not constant, plateau or inverse_sqrt")
