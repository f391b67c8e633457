"""What the trainer and inference need of a task (translation, captioning): its data, a model,
validation, and the vocabularies of a trained run.

    task = build_task(cfg, log)                              # Task.prepare: training data, vocabularies
    task = task_class(cfg).from_run(cfg, run_folder)          # vocabularies saved beside a checkpoint
    model = task.build_model()
    batch = task.train_data.batch(indices, task.tgt_tok)     # Batch: src, src_mask, tgt_in, tgt_out
    outputs, value = task.validate(model, search_cfg, device, amp_dtype)   # value of task.metric
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from seqattn.config import Config, SearchConfig
from seqattn.data.batching import Batch
from seqattn.models import Seq2Seq
from seqattn.search import Hypothesis


class Dataset(Protocol):
    """A training or validation split as the trainer walks it."""

    def __len__(self) -> int: ...

    def batches(self, batch_tokens: int, shuffle: bool, seed: int = 0) -> list[list[int]]: ...

    def batch(self, indices: list[int], tok: Any) -> Batch: ...


class Task(ABC):
    """A task's vocabularies, its train and valid splits, its model and its validation search."""

    metric: str  # the validation metric as messages name it ("BLEU", "accuracy"); logs record valid_<lower-case name>
    higher_is_better: bool = True  # best checkpoint, plateau schedule and early stopping follow this direction
    src_tok: Any  # source vocabulary (None when the source is not text)
    tgt_tok: Any  # target vocabulary: pad_id, bos_id, eos_id, __len__, encode, decode
    train_data: Dataset
    valid_data: Dataset

    def __init__(self, cfg: Config, src_tok: Any, tgt_tok: Any) -> None:
        self.cfg, self.src_tok, self.tgt_tok = cfg, src_tok, tgt_tok

    @classmethod
    @abstractmethod
    def prepare(cls, cfg: Config, log=print, device: torch.device | None = None) -> Task:
        """The task with its train and valid splits, building its vocabularies into cfg.out_dir once."""

    @classmethod
    @abstractmethod
    def from_run(cls, cfg: Config, folder: Path) -> Task:
        """The task of a trained run, for inference: the vocabularies saved in `folder`, no data."""

    @abstractmethod
    def build_model(self) -> Seq2Seq:
        """A new model for this task's vocabularies."""

    # ---- inference (seqattn.inference.Predictor) --------------------------------------------------
    @abstractmethod
    def input_length(self, item: Any) -> int:
        """The length inputs are batched by; 0 for an empty input, which is not decoded."""

    @abstractmethod
    def collate_inputs(self, model: Seq2Seq, items: list[Any], device: torch.device) -> tuple[Tensor, Tensor]:
        """Inputs -> `src` and `src_mask` [B, S] for search, on `device` (run under autocast)."""

    @abstractmethod
    def text(self, hyp: Hypothesis) -> str:
        """A hypothesis as the task's output text."""

    @abstractmethod
    def validate(
        self, model: Seq2Seq, search: SearchConfig, device: torch.device, amp_dtype: torch.dtype | None,
    ) -> tuple[list[str], float]:
        """Decode the valid split with `search` -> (outputs as text, the value of `metric`)."""
