"""What the trainer and inference need of a task (translation, captioning, classification): its data,
a model, validation by the task's metric, and the vocabularies of a trained run.

    task = build_task(cfg, log)                              # Task.prepare: training data, vocabularies
    task = task_class(cfg).from_run(cfg, run_folder)          # vocabularies saved beside a checkpoint
    model = task.build_model()
    batch = task.train_data.batch(indices, task.tgt_tok)     # Batch: src, src_mask, tgt_in, tgt_out
    result = task.validate(model, search_cfg, device, amp_dtype)  # Validation: outputs, value (of task.metric)
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Metric:
    """The validation metric a task is judged by: the trainer keeps best.pt, steps the plateau
    schedule and stops early by it, in its direction. Logged as valid_<name>."""

    name: str  # "bleu", "accuracy", ...: the log's key valid_<name>
    label: str  # as messages print it: "BLEU", "accuracy"
    higher_is_better: bool = True
    fmt: str = ".2f"  # format spec of a value in messages (".2%" for a fraction)

    def better(self, value: float, best: float | None) -> bool:
        """Whether `value` improves on `best` (None: nothing validated yet)."""
        return best is None or (value > best if self.higher_is_better else value < best)

    def format(self, value: float | None) -> str:
        return "-" if value is None else format(value, self.fmt)


@dataclass
class Validation:
    """What Task.validate gives: the outputs (one line each, written to valid.hyp), the value of the
    task's metric, and the validation loss per token when the task computes it itself (None: the
    trainer computes it by teacher forcing)."""

    outputs: list[str]
    value: float
    loss: float | None = None


class Task(ABC):
    """A task's vocabularies, its train and valid splits, its model and its validation."""

    metric: Metric = Metric("bleu", "BLEU")  # a task may choose it per run (captioning: captions.valid_metric)

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
    ) -> Validation:
        """The model's outputs on the valid split (sequence tasks decode it with `search`) and their
        score by `metric` against its references."""


# captions.valid_metric -> the captioning task's metric (in this light module, for config.validate to check)
CAPTION_METRICS = {"bleu": Task.metric, "cider": Metric("cider", "CIDEr")}
