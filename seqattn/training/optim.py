"""Optimisers and learning-rate schedules."""
from __future__ import annotations

import math

from torch import nn, optim

from seqattn.config import TrainConfig
from seqattn.errors import SeqattnError

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "plateau", "inverse_sqrt", "cosine")
Scheduler = optim.lr_scheduler.LRScheduler | optim.lr_scheduler.ReduceLROnPlateau


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> optim.Optimizer:
    """Adam (train.betas) or SGD (train.momentum, train.nesterov), with train.weight_decay. Adam runs
    torch's fused kernel, one pass over each parameter (10 ms an update for the Transformer recipe's
    7.6 M parameters on one AMD EPYC thread, against 26-29 ms for the loop of tensor ops by default
    and 29-31 ms for the foreach one; `benchmarks/README.md`)."""
    if cfg.optimizer == "adam":
        return optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=True)
    if cfg.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                         weight_decay=cfg.weight_decay)
    raise SeqattnError(f"train.optimizer: {cfg.optimizer!r} is not {' or '.join(OPTIMIZERS)}")


class InverseSqrt:
    """Warmup then inverse square root (Vaswani et al. 2017, eq. 3, relative to train.lr):
    factor(step) = min(step / warmup, sqrt(warmup / step))."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup = max(1, warmup_steps)

    def __call__(self, step: int) -> float:
        step = max(1, step)
        return min(step / self.warmup, (self.warmup / step) ** 0.5)


class Cosine:
    """Cosine decay from train.lr to 0 over `total` updates: factor(step) = (1 + cos(pi step / total)) / 2."""

    def __init__(self, total: int) -> None:
        self.total = max(1, total)

    def __call__(self, step: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(step, self.total) / self.total))


def build_scheduler(
    cfg: TrainConfig, optimizer: optim.Optimizer, higher_is_better: bool, updates_per_epoch: int,
) -> Scheduler | None:
    """`plateau` steps on the task's validation metric (in its direction); `inverse_sqrt` and `cosine`
    (planned over train.max_epochs x updates_per_epoch) step after every update."""
    if cfg.schedule == "constant":
        return None
    if cfg.schedule == "plateau":
        return optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if higher_is_better else "min", factor=cfg.plateau_factor,
            patience=cfg.plateau_patience, min_lr=cfg.min_lr,
        )
    if cfg.schedule == "inverse_sqrt":
        return optim.lr_scheduler.LambdaLR(optimizer, InverseSqrt(cfg.warmup_steps))
    if cfg.schedule == "cosine":
        if cfg.max_epochs < 1:
            raise SeqattnError("train.schedule=cosine: plans its decay over train.max_epochs; set train.max_epochs "
                               f"to a positive number (got {cfg.max_epochs})")
        return optim.lr_scheduler.LambdaLR(optimizer, Cosine(cfg.max_epochs * updates_per_epoch))
    raise SeqattnError(f"train.schedule: {cfg.schedule!r} is not one of {', '.join(SCHEDULES)}")
