"""What the trainer needs of a task (translation, captioning): its data, a model and validation.

    task = build_task(cfg, log)
    model = task.build_model()
    batch = task.train_data.batch(indices, task.tgt_tok)     # Batch: src, src_mask, tgt_in, tgt_out
    hyps, bleu = task.validate(model, search_cfg, device, amp_dtype)
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

import torch

from seqattn.config import Config, SearchConfig
from seqattn.data.batching import Batch
from seqattn.evaluation import Score
from seqattn.models import Seq2Seq


class Dataset(Protocol):
    """A training or validation split as the trainer walks it."""

    def __len__(self) -> int: ...

    def batches(self, batch_tokens: int, shuffle: bool, seed: int = 0) -> list[list[int]]: ...

    def batch(self, indices: list[int], tok: Any) -> Batch: ...


class Task(ABC):
    """A task's vocabularies, its train and valid splits, its model and its validation search."""

    src_tok: Any  # source vocabulary (None when the source is not text)
    tgt_tok: Any  # target vocabulary: pad_id, bos_id, eos_id, __len__, encode, decode
    train_data: Dataset
    valid_data: Dataset

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    @abstractmethod
    def build_model(self) -> Seq2Seq:
        """A new model for this task's vocabularies."""

    @abstractmethod
    def validate(
        self, model: Seq2Seq, search: SearchConfig, device: torch.device, amp_dtype: torch.dtype | None,
    ) -> tuple[list[str], Score]:
        """Decode the valid split with `search` -> (hypotheses, sacreBLEU against its references)."""
