"""Tasks: what a model learns from which data, how it is validated, and how a trained run is loaded
back; the architecture's entry in seqattn.registry names its task."""
from __future__ import annotations

import torch

from seqattn.config import Config
from seqattn.registry import TASKS, arch, load
from seqattn.tasks.base import Dataset, Metric, Task, Validation

__all__ = ["Dataset", "Metric", "Task", "Validation", "build_task", "task_class"]


def task_class(cfg: Config) -> type[Task]:
    """The Task class of the architecture cfg.model.arch."""
    return load(TASKS[arch(cfg.model.arch).task])


def build_task(cfg: Config, log=print, device: torch.device | None = None) -> Task:
    """The task of cfg.model.arch with its training data; `device` runs a frozen CNN over the images
    once (captioning's feature cache)."""
    return task_class(cfg).prepare(cfg, log=log, device=device)
