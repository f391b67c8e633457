"""Corpus-level scoring with sacreBLEU: BLEU and chrF, and BLEU by source length.

`refs` is always a list of reference streams, each a list of lines parallel to the hypotheses.
"""
from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.base import Metric

from seqattn.errors import SeqattnError


@dataclass
class Score:
    """One corpus score with the sacreBLEU signature that makes it reproducible."""

    name: str  # e.g. "BLEU", "chrF2"
    score: float
    signature: str  # e.g. "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    text: str  # sacreBLEU's formatted line, e.g. "BLEU = 34.20 65.1/40.3/27.0/18.4 (BP = ...)"


def _check_refs(hyps: list[str], refs: list[list[str]]) -> None:
    if not refs:
        raise SeqattnError("no reference stream given: pass at least one reference file")
    for i, stream in enumerate(refs, 1):
        if len(stream) != len(hyps):
            raise SeqattnError(
                f"reference stream {i} has {len(stream)} lines but there are {len(hyps)} hypotheses; "
                "give one reference line per hypothesis"
            )


def _score(metric: Metric, hyps: list[str], refs: list[list[str]]) -> Score:
    result = metric.corpus_score(hyps, refs)
    return Score(result.name, result.score, str(metric.get_signature()), str(result))


def corpus_scores(hyps: list[str], refs: list[list[str]]) -> list[Score]:
    """BLEU and chrF of the hypotheses against one or more reference streams."""
    _check_refs(hyps, refs)
    return [_score(BLEU(), hyps, refs), _score(CHRF(), hyps, refs)]


def corpus_bleu(hyps: list[str], refs: list[list[str]]) -> Score:
    """BLEU alone (validation during training)."""
    _check_refs(hyps, refs)
    return _score(BLEU(), hyps, refs)


def bleu_by_length(
    sources: list[str], hyps: list[str], refs: list[list[str]], edges: Sequence[int] = (10, 20, 30, 40, 50)
) -> list[tuple[str, int, float]]:
    """BLEU per source-length bucket (words, whitespace split), as in Bahdanau et al. (2015), Fig. 2.

    Buckets are "1-10", "11-20", ..., "51+" for the default edges (a bucket holds lengths up to its edge);
    an empty source counts as length 0 (first bucket). Only non-empty buckets are returned,
    as (label, number of sentences, BLEU).
    """
    _check_refs(hyps, refs)
    if len(sources) != len(hyps):
        raise SeqattnError(
            f"source has {len(sources)} lines but there are {len(hyps)} hypotheses; "
            "give the source file the hypotheses were translated from"
        )
    if not edges or any(e <= 0 for e in edges) or list(edges) != sorted(set(edges)):
        raise SeqattnError(f"length edges {list(edges)}: give strictly increasing positive word counts, e.g. 10,20,30")
    lows = [1, *(e + 1 for e in edges)]
    labels = [f"{lo}-{hi}" for lo, hi in zip(lows, edges)] + [f"{lows[-1]}+"]
    buckets: list[list[int]] = [[] for _ in labels]
    for i, src in enumerate(sources):
        buckets[bisect.bisect_left(edges, len(src.split()))].append(i)
    bleu = BLEU()
    rows = []
    for label, idx in zip(labels, buckets):
        if idx:
            score = bleu.corpus_score([hyps[i] for i in idx], [[stream[i] for i in idx] for stream in refs]).score
            rows.append((label, len(idx), score))
    return rows


def format_table(rows: Sequence[tuple], header: Sequence[str]) -> str:
    """A markdown table (readable as plain text); floats are printed with two decimals."""
    cells = [list(header)] + [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(row[c]) for row in cells) for c in range(len(header))]
    lines = ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
