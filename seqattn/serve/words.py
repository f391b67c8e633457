"""Sentencepiece pieces merged into words, and attention matrices with them: a word's source columns
are summed (each row still sums to 1) and its target rows averaged (each row still sums to 1)."""
from __future__ import annotations

import numpy as np

WORD_START = "\u2581"  # sentencepiece's ▁: the piece begins a new word


def word_groups(pieces: list[str], subwords: bool = True) -> list[tuple[str, list[int]]]:
    """(word, indices of its pieces) in order; `</s>` and, without subwords, every piece are words alone."""
    groups: list[tuple[str, list[int]]] = []
    for i, piece in enumerate(pieces):
        joins = subwords and groups and not piece.startswith(WORD_START) and piece != "</s>" and groups[-1][0] != "</s>"
        if joins:
            word, members = groups[-1]
            groups[-1] = (word + piece, members + [i])
        else:
            groups.append((piece, [i]))
    return [(word.replace(WORD_START, "") if subwords else word, members) for word, members in groups]


def merge_columns(alpha: np.ndarray, groups: list[tuple[str, list[int]]]) -> np.ndarray:
    """[R, pieces] -> [R, words]: a word's weight is the sum of its pieces'."""
    return np.stack([alpha[:, members].sum(axis=1) for _, members in groups], axis=1)


def merge_rows(alpha: np.ndarray, groups: list[tuple[str, list[int]]]) -> np.ndarray:
    """[pieces, C] -> [words, C]: a word's row is the mean of its pieces' rows."""
    return np.stack([alpha[members].mean(axis=0) for _, members in groups], axis=0)


def word_alignment(alpha: np.ndarray, source: list[str], target: list[str], subwords: bool = True) -> dict:
    """The piece-level alignment {source, target, alpha} of `save_alignment` at word level."""
    src, tgt = word_groups(source, subwords), word_groups(target, subwords)
    merged = merge_rows(merge_columns(alpha, src), tgt)
    return {"source": [w for w, _ in src], "target": [w for w, _ in tgt], "alpha": merged.tolist()}
