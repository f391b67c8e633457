"""The one inference path of every task: inputs batched by length, autocast, the shared search, and
n-best hypotheses back in input order. The task turns its inputs into `src` and `src_mask`
(Task.collate_inputs) and a hypothesis into output (Task.text); nothing here asks which task or
model it drives.

    predictor = Predictor(task, model, cfg.search, device)
    nbest = predictor.predict(task.inputs(lines))      # [[Hypothesis, ...] per input]
    text = predictor.text(nbest[0][0])
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from seqattn.config import SearchConfig
from seqattn.models import Seq2Seq
from seqattn.precision import autocast
from seqattn.search import Hypothesis, search

if TYPE_CHECKING:
    from seqattn.tasks.base import Task


class Predictor:
    """`model` may be one model or an Ensemble; `generator` draws the samples when cfg.sampling;
    with `amp_dtype` (torch.bfloat16 or torch.float16) the model runs under autocast."""

    def __init__(
        self, task: Task, model: Seq2Seq, cfg: SearchConfig, device: torch.device,
        generator: torch.Generator | None = None, amp_dtype: torch.dtype | None = None,
    ) -> None:
        self.task, self.model, self.cfg, self.device = task, model, cfg, device
        self.generator, self.amp_dtype = generator, amp_dtype

    @torch.no_grad()  # not inference_mode: under it autocast re-casts the weights at every search step
    def predict(self, items: Sequence[Any]) -> list[list[Hypothesis]]:
        """The task's inputs -> n-best hypotheses per input, in input order. Inputs of length 0 (an
        empty line) are not decoded: they get an empty hypothesis, so outputs stay line-aligned."""
        self.model.eval()
        lengths = [self.task.input_length(item) for item in items]
        order = sorted((i for i in range(len(items)) if lengths[i] > 0), key=lambda i: lengths[i])
        results: list[list[Hypothesis]] = [[Hypothesis([], 0.0, 0.0, None, True)] for _ in items]
        for start in range(0, len(order), self.cfg.batch_size):
            chunk = order[start : start + self.cfg.batch_size]
            with autocast(self.device, self.amp_dtype):
                src, src_mask = self.task.collate_inputs(self.model, [items[i] for i in chunk], self.device)
                hyps = search(self.model, src, src_mask, self.cfg, self.generator)
            for i, nbest in zip(chunk, hyps):
                results[i] = nbest
        return results

    def text(self, hyp: Hypothesis) -> str:
        return self.task.text(hyp)
