"""Tasks: what a model learns from which data, and how it is validated; `build_task` picks one."""
from __future__ import annotations

import torch

from seqattn.config import Config
from seqattn.models import CAPTIONING_ARCHS
from seqattn.tasks.base import Dataset, Task
from seqattn.tasks.captioning import CaptioningTask
from seqattn.tasks.translation import TranslationTask

__all__ = ["CaptioningTask", "Dataset", "Task", "TranslationTask", "build_task"]


def build_task(cfg: Config, log=print, device: torch.device | None = None) -> Task:
    """Captioning for image-to-text architectures, translation otherwise; `device` runs a frozen
    CNN over the images once (feature cache)."""
    if cfg.model.arch in CAPTIONING_ARCHS:
        return CaptioningTask(cfg, log=log, device=device)
    return TranslationTask(cfg, log=log)
