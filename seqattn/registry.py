"""Every architecture in one place: the function that builds its model and the task it learns.

A new model is its files plus one line in ARCHS; a new task, its files plus one line in TASKS.
Entries name "module:attribute" and are imported when first used, so asking which task an
architecture learns loads neither the model's nor the task's dependencies (PIL, pycocoevalcap).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from seqattn.errors import SeqattnError


@dataclass(frozen=True)
class Arch:
    builder: str | Callable  # "module:function" (or the function) -> the model, called as
    # (cfg.model, src_vocab, tgt_vocab, pad_id, bos_id, eos_id, **task extras)
    task: str  # a key of TASKS


ARCHS: dict[str, Arch] = {
    "rnnencdec": Arch("seqattn.models.rnn:build_rnn", "translation"),
    "rnnsearch": Arch("seqattn.models.rnn:build_rnn", "translation"),
    "luong": Arch("seqattn.models.luong:build_luong", "translation"),
    "transformer": Arch("seqattn.models.transformer:build_transformer", "translation"),
    "show-attend-tell": Arch("seqattn.models.show_attend_tell:build_show_attend_tell", "captioning"),
    "memn2n": Arch("seqattn.models.memn2n:build_memn2n", "qa"),
    "kvmemnn": Arch("seqattn.models.kvmemnn:build_kvmemnn", "qa"),
    "classifier": Arch("seqattn.models.classifier:build_image_classifier", "classification"),
}

TASKS: dict[str, str] = {
    "translation": "seqattn.tasks.translation:TranslationTask",
    "captioning": "seqattn.tasks.captioning:CaptioningTask",
    "qa": "seqattn.tasks.qa:QATask",
    "classification": "seqattn.tasks.classification:ClassificationTask",
}


def arch(name: str) -> Arch:
    """The registry entry of model.arch `name`; an unknown name is an error listing the known ones."""
    if name not in ARCHS:
        raise SeqattnError(f"model.arch: unknown architecture {name!r}; choose one of {', '.join(ARCHS)}")
    return ARCHS[name]


def load(target: str | Callable) -> Any:
    """The attribute a "module:attribute" entry names (an entry that is already the function: itself)."""
    if callable(target):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
