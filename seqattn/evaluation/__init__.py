"""Scoring: sacreBLEU / chrF for translations, pycocoevalcap metrics for captions (loaded on first use,
so translation never imports pycocoevalcap)."""
from __future__ import annotations

from typing import Any

from seqattn.evaluation.bleu import Score, bleu_by_length, corpus_bleu, corpus_scores, format_table


def __getattr__(name: str) -> Any:
    if name == "caption_scores":
        from seqattn.evaluation.captions import caption_scores

        return caption_scores
    raise AttributeError(f"module 'seqattn.evaluation' has no attribute {name!r}")


__all__ = ["Score", "bleu_by_length", "caption_scores", "corpus_bleu", "corpus_scores", "format_table"]
