"""Sentencepiece pieces merged into words, and attention matrices with them: a word's source columns
are summed (each row still sums to 1) and its target rows averaged (each row still sums to 1); the
word links `seqattn align` reads off such a matrix (seqattn.alignment.links)."""
from __future__ import annotations

import numpy as np
import torch

from seqattn.alignment import word_links

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


def without_eos(groups: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    """The groups before a final `</s>`: the words `seqattn align` links (it drops EOS)."""
    return groups[:-1] if groups and groups[-1][0] == "</s>" else groups


def piece_words(groups: list[tuple[str, list[int]]]) -> list[int]:
    """The word of each piece, in order: [0, 0, 1, ...]."""
    return [k for k, (_, members) in enumerate(groups) for _ in members]


def links(alpha: np.ndarray, src: list[tuple[str, list[int]]], tgt: list[tuple[str, list[int]]], extract: str,
          threshold: float) -> list[list[int]]:
    """Links [source word, target word], 0-based and sorted, that `seqattn align --pieces sum --extract
    EXTRACT` reads off alpha [T, S] over pieces; src, tgt: the groups linked, EOS left out (its row and
    column dropped)."""
    src_words, tgt_words = piece_words(src), piece_words(tgt)
    weights = torch.from_numpy(alpha[: len(tgt_words), : len(src_words)])  # [T', S'] without EOS
    return sorted([i, j] for i, j in word_links(weights, src_words, tgt_words, "sum", extract, threshold))


def word_alignment(alpha: np.ndarray, source: list[str], target: list[str], subwords: bool = True,
                   extract: str = "argmax", threshold: float = 0.5) -> dict:
    """The piece-level alignment {source, target, alpha} of `save_alignment` at word level, with the
    word links of `links` (argmax per target word, or every weight over `threshold`)."""
    src, tgt = word_groups(source, subwords), word_groups(target, subwords)
    merged = merge_rows(merge_columns(alpha, src), tgt)
    return {"source": [w for w, _ in src], "target": [w for w, _ in tgt], "alpha": merged.tolist(),
            "links": links(alpha, without_eos(src), without_eos(tgt), extract, threshold)}
