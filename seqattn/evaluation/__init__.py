"""Scoring: sacreBLEU / chrF for translations, pycocoevalcap metrics for captions."""
from __future__ import annotations

from seqattn.evaluation.bleu import Score, bleu_by_length, corpus_bleu, corpus_scores, format_table
from seqattn.evaluation.captions import caption_scores

__all__ = ["Score", "bleu_by_length", "caption_scores", "corpus_bleu", "corpus_scores", "format_table"]
