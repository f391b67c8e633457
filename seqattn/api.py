"""The Python API: a trained checkpoint as an object that translates, captions or answers, through
the one inference path (seqattn.inference.Predictor) the command line uses.

    import seqattn
    model = seqattn.load("runs/demo/best.pt")                  # device="cpu", precision="fp32"
    best = model.translate(["A dog runs on the beach."], beam_size=5)[0][0]
    best.text, best.score, best.alpha.shape                    # alpha [len(best.target), len(best.source)]
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seqattn.allocator import keep_freed_memory
from seqattn.config import Config, SearchConfig
from seqattn.errors import SeqattnError
from seqattn.inference import Predictor
from seqattn.models import Seq2Seq
from seqattn.precision import decode_dtype, quantize_int8
from seqattn.registry import arch
from seqattn.search import Hypothesis, check_options
from seqattn.tasks import Task

SEARCH_OPTIONS = tuple(f.name for f in dataclasses.fields(SearchConfig))

# task -> (what its models do, the API method and command that do it)
TASK_USES = {
    "translation": ("translate", "translate"),
    "captioning": ("caption images", "caption"),
    "qa": ("answer questions", "answer"),
}


@dataclass
class Prediction:
    """One hypothesis: its text, its ranking score and its attention alpha [len(target), len(source)]
    (None for a model without attention), with the labels of alpha's rows and columns."""

    text: str
    score: float
    alpha: Tensor | None
    source: list[str]  # columns: source pieces and </s>, image grid cells "row,col", or story sentences
    target: list[str]  # rows: output pieces, and </s> when the output ended


def search_options(base: SearchConfig, **given: Any) -> SearchConfig:
    """`base` with the options given (not None) replacing its own, every option checked."""
    unknown = sorted(set(given) - set(SEARCH_OPTIONS))
    if unknown:
        raise SeqattnError(f"search option {unknown[0]!r} is unknown; choose among {', '.join(SEARCH_OPTIONS)}")
    cfg = dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})
    check_options(cfg)
    return cfg


class Model:
    """A trained model (or ensemble) with its task: `translate`, `caption` or `answer`, as its task is.
    `model`, `cfg` and `task` are the loaded Seq2Seq, its Config and its Task."""

    def __init__(
        self, model: Seq2Seq, cfg: Config, task: Task, device: torch.device, amp_dtype: torch.dtype | None,
        name: str,
    ) -> None:
        self.model, self.cfg, self.task, self.device, self.amp_dtype = model, cfg, task, device, amp_dtype
        self.name = name  # the (first) checkpoint, as messages name it

    @classmethod
    def from_checkpoints(
        cls, checkpoints: Sequence[Path], device: torch.device, precision: str = "fp32", option: str = "precision",
    ) -> Model:
        """The model of one checkpoint, or the ensemble of several (seqattn.training.load_models), to
        decode at `precision` (fp32, bf16, fp16, auto, int8; `option` names it in errors). Sets malloc to
        keep freed memory for the rest of the process (seqattn.allocator), as training does."""
        from seqattn.training import load_models

        keep_freed_memory()  # a search step's [rows, V] blocks are otherwise page-faulted anew at every step
        amp_dtype = decode_dtype(precision, device, option)  # a bad precision stops before loading
        model, cfg, task = load_models(list(checkpoints), device)
        model.fuse_for_decoding()
        if precision == "int8":
            model = quantize_int8(model)
        return cls(model, cfg, task, device, amp_dtype, str(checkpoints[0]))

    @property
    def task_name(self) -> str:
        """translation, captioning, qa or classification."""
        return arch(self.cfg.model.arch).task

    def translate(self, sentences: Sequence[str], seed: int | None = None, **search: Any) -> list[list[Prediction]]:
        """Source sentences -> n-best translations per sentence. `search`: SearchConfig fields
        (beam_size, nbest, length_penalty, sampling, ...) replacing the recipe's; `seed` seeds sampling."""
        self.expect("translation")
        ids = self.task.inputs(list(sentences))
        results = self.predict(ids, seed, **search)
        return [[self._prediction(h, self.task.src_tok.pieces(i) + ["</s>"]) for h in nbest]
                for i, nbest in zip(ids, results)]

    def caption(self, images: Sequence[str | Path], seed: int | None = None, **search: Any) -> list[list[Prediction]]:
        """Image files -> n-best captions per image; attention over the annotation grid's cells."""
        self.expect("captioning")
        results = self.predict([Path(p) for p in images], seed, **search)
        return [[self._prediction(h, grid_cells(h.alpha)) for h in nbest] for nbest in results]

    def answer(self, stories: Sequence[Any], seed: int | None = None, **search: Any) -> list[list[Prediction]]:
        """bAbI stories -> n-best answers per question. A story is bAbI-format text (numbered lines,
        questions ending in `?`, answers optional; one or more questions) or a BabiExample; the
        attention is the last hop's over the story's sentences."""
        self.expect("qa")
        examples = self.questions(stories)
        results = self.predict(examples, seed, **search)
        return [[self._prediction(h, [" ".join(s) for s in ex.memory]) for h in nbest]
                for ex, nbest in zip(examples, results)]

    def questions(self, stories: Sequence[Any]) -> list[Any]:
        """bAbI-format texts and BabiExample items -> BabiExample items, one per question, in order."""
        from seqattn.data.babi import BabiExample, parse_babi

        memory_size = self.cfg.babi.memory_size
        return [q for i, story in enumerate(stories) for q in (
            [story] if isinstance(story, BabiExample)
            else parse_babi(str(story).splitlines(), f"story {i}", 0, memory_size, answered=False))]

    def predict(self, items: Sequence[Any], seed: int | None = None, **search: Any) -> list[list[Hypothesis]]:
        """The task's inputs -> raw n-best Hypotheses (Predictor.predict) under these search options."""
        cfg = search_options(self.cfg.search, **search)
        generator = None if seed is None else torch.Generator(self.device).manual_seed(seed)
        predictor = Predictor(self.task, self.model, cfg, self.device, generator, self.amp_dtype)
        try:
            return predictor.predict(items)
        except RuntimeError as err:
            if self.amp_dtype is None:
                raise
            raise SeqattnError(
                f"precision {str(self.amp_dtype).removeprefix('torch.')}: {self.device} cannot run this model under "
                f"autocast ({str(err).splitlines()[0]}); use precision fp32") from None

    def _prediction(self, hyp: Hypothesis, source: list[str]) -> Prediction:
        target = self.task.tgt_tok.pieces(hyp.tokens) + (["</s>"] if hyp.finished else [])
        return Prediction(self.task.text(hyp), hyp.score, hyp.alpha, source, target)

    def expect(self, task: str) -> None:
        """Raise SeqattnError unless this model learns `task`, naming the method that fits it."""
        if self.task_name == task:
            return
        fits = TASK_USES.get(self.task_name)
        hint = f"use .{fits[1]}() or `seqattn {fits[1]}`" if fits else "it is not decoded by search"
        raise SeqattnError(f"{self.name}: model {self.cfg.model.arch} does not {TASK_USES[task][0]}; {hint}")


def grid_cells(alpha: Tensor | None) -> list[str]:
    """Labels "row,col" of the L = side * side annotation cells alpha [T, L] attends to."""
    if alpha is None:
        return []
    side = math.isqrt(alpha.size(-1))
    return [f"{i // side},{i % side}" for i in range(alpha.size(-1))]


def load(checkpoint: str | Path | Sequence[str | Path], device: str = "cpu", precision: str = "fp32") -> Model:
    """A trained checkpoint (best.pt, last.pt; a list of several: their ensemble) ready to decode on
    `device` (auto, cpu, cuda, cuda:N) at `precision` (fp32, bf16, fp16, auto; int8 on the CPU:
    int8 weights, quantised once here)."""
    from seqattn.training import resolve_device

    paths = [Path(checkpoint)] if isinstance(checkpoint, (str, Path)) else [Path(p) for p in checkpoint]
    if not paths:
        raise SeqattnError("checkpoint: give at least one checkpoint file")
    dev = resolve_device(device)
    return Model.from_checkpoints(paths, dev, precision)
