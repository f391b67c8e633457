"""Question answering scores: exact-match accuracy per bAbI task, and how often each hop's strongest
attention falls on one of the question's supporting facts."""
from __future__ import annotations

from collections import defaultdict

from torch import Tensor

from seqattn.data.babi import BabiExample


def answer_text(words: list[str]) -> str:
    """Answer words as bAbI writes them: comma-joined ("apple,football")."""
    return ",".join(words)


def is_right(example: BabiExample, answer: str) -> bool:
    """Exact match of the whole answer: every word, in order."""
    return answer == answer_text(example.answer)


def accuracy_by_task(examples: list[BabiExample], answers: list[str]) -> dict[int, float]:
    """Exact-match accuracy (x100) of `answers` per bAbI task of `examples` (aligned lists): the whole
    answer must match, every word in order."""
    right, total = defaultdict(int), defaultdict(int)
    for ex, answer in zip(examples, answers, strict=True):
        total[ex.task] += 1
        right[ex.task] += is_right(ex, answer)
    return {task: 100.0 * right[task] / total[task] for task in sorted(total)}


def support_hit_rate(examples: list[BabiExample], hops: list[Tensor]) -> dict[int, list[float]]:
    """Per task, per hop: the share (x100) of questions whose most attended memory is one of their
    supporting facts. hops[i] is example i's attention [K, M_i]; questions whose supporting facts fell
    outside the memory window are not counted."""
    hits: dict[int, list[int]] = {}
    total: dict[int, int] = defaultdict(int)
    for ex, p in zip(examples, hops, strict=True):
        if not ex.support:
            continue
        strongest = p.argmax(-1).tolist()  # [K]
        counts = hits.setdefault(ex.task, [0] * len(strongest))
        for k, slot in enumerate(strongest):
            counts[k] += slot in ex.support
        total[ex.task] += 1
    return {task: [100.0 * h / total[task] for h in hits[task]] for task in sorted(hits)}
