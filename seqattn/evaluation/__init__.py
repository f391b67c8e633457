"""Scoring translations with sacreBLEU and reading hypothesis/reference files."""
from __future__ import annotations

from seqattn.evaluation.bleu import Score, bleu_by_length, corpus_bleu, corpus_scores, format_table

__all__ = ["Score", "bleu_by_length", "corpus_bleu", "corpus_scores", "format_table"]
