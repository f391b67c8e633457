"""The checkpoints a server decodes with: each answers one request at a time while at most `queue`
more wait their turn; beyond that a request is refused at once as busy."""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from seqattn.config import Config
from seqattn.errors import SeqattnError
from seqattn.inference import Predictor
from seqattn.models import Seq2Seq
from seqattn.search import Hypothesis
from seqattn.tasks.base import Task
from seqattn.tasks.captioning import CaptioningTask
from seqattn.tasks.qa import QATask
from seqattn.tasks.translation import TranslationTask
from seqattn.training import load_model

KINDS = {TranslationTask: "translation", CaptioningTask: "captioning", QATask: "qa"}


class Busy(Exception):
    """The model's queue is full."""


class Served:
    """One loaded checkpoint under the name the page shows."""

    def __init__(self, name: str, model: Seq2Seq, cfg: Config, task: Task, device: torch.device, queue: int) -> None:
        if type(task) not in KINDS:
            raise SeqattnError(f"{name}: model {cfg.model.arch} neither translates, captions nor answers; nothing to serve")
        if queue < 0:
            raise SeqattnError(f"--queue {queue}: give 0 or more waiting requests")
        self.name, self.model, self.cfg, self.task, self.device = name, model, cfg, task, device
        self.kind = KINDS[type(task)]
        self.lock = threading.Lock()  # one decoding at a time
        self.admitted = threading.BoundedSemaphore(queue + 1)  # the one decoding and those waiting

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the model for one request; Busy when `queue` requests already wait."""
        if not self.admitted.acquire(blocking=False):
            raise Busy(f"model {self.name} is busy: its queue is full; try again in a moment")
        try:
            with self.lock:
                yield
        finally:
            self.admitted.release()

    def predict(self, item: Any, beam_size: int, nbest: int) -> list[Hypothesis]:
        """The n-best hypotheses of one input by beam search (beam 1: greedy); call inside `turn`."""
        search = dataclasses.replace(self.cfg.search, beam_size=beam_size, nbest=nbest, sampling=False)
        return Predictor(self.task, self.model, search, self.device).predict([item])[0]

    def describe(self) -> dict:
        s = self.cfg.search
        return {"name": self.name, "task": self.kind, "arch": self.cfg.model.arch,
                "beam_size": s.beam_size, "nbest": min(s.nbest, s.beam_size)}


def load_served(checkpoints: Sequence[Path], device: torch.device, queue: int) -> dict[str, Served]:
    """Each checkpoint under a short unique name (its folder and file, e.g. `run/best.pt`)."""
    served: dict[str, Served] = {}
    for path in checkpoints:
        path = Path(path)
        name = f"{path.parent.name}/{path.name}"
        if name in served:
            name = f"{name} ({len(served) + 1})"
        served[name] = Served(name, *load_model(path, device), device, queue)
    return served
