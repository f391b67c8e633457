"""From an attention matrix over subword pieces to word alignments: pieces grouped into words, piece
weights aggregated to word weights, links extracted, and the links of two directions combined.

Links are (source word, target word), 0-based, as Pharaoh `i-j` lines write them.

Aggregation (`PIECES`): `sum` turns alpha [T, S] over pieces into weights over words, a source
word's weight the sum over its pieces (the attention mass on the word) and a target word's row the
mean over its pieces (still one distribution per target word, so a threshold means the same for
short and long words); `any` extracts links between pieces and links two words when any of their
pieces are (Zenkel et al. 2019; Garg et al. 2019). Extraction (`EXTRACT`): `argmax`, each target
word (or piece) to its most attended source word (or piece), or `threshold`, every weight above it.
"""
from __future__ import annotations

import torch
from torch import Tensor

from seqattn.data.alignments import Link
from seqattn.errors import SeqattnError

PIECES = ("sum", "any")
EXTRACT = ("argmax", "threshold")
SYMMETRIZE = ("intersection", "union", "grow-diag-final")


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SeqattnError(f"{option} {value}: choose one of {', '.join(choices)}")


def word_weights(alpha: Tensor, src_words: list[int], tgt_words: list[int]) -> Tensor:
    """alpha [T, S] over pieces -> [T_w, S_w] over words: sum over a source word's pieces, mean over a
    target word's pieces. src_words [S], tgt_words [T]: the word of each piece."""
    to_src = torch.zeros(len(src_words), max(src_words, default=-1) + 1)  # [S, S_w]
    to_src[range(len(src_words)), src_words] = 1.0
    to_tgt = torch.zeros(max(tgt_words, default=-1) + 1, len(tgt_words))  # [T_w, T]
    to_tgt[tgt_words, range(len(tgt_words))] = 1.0
    to_tgt = to_tgt / to_tgt.sum(dim=1, keepdim=True).clamp(min=1.0)
    return to_tgt @ alpha.float() @ to_src


def extract(weights: Tensor, method: str = "argmax", threshold: float = 0.5) -> set[Link]:
    """weights [T, S] (rows target, columns source) -> links (source, target): the argmax of each row
    with any weight, or every weight above `threshold`. An empty source (S = 0) has no links."""
    check_choice("--extract", method, EXTRACT)
    if weights.size(1) == 0:
        return set()
    if method == "argmax":
        best = weights.argmax(dim=1).tolist()  # [T]
        return {(best[j], j) for j in range(weights.size(0)) if weights[j].max() > 0}
    return {(i, j) for j, i in weights.gt(threshold).nonzero().tolist()}


def word_links(alpha: Tensor, src_words: list[int], tgt_words: list[int], pieces: str = "any",
               method: str = "argmax", threshold: float = 0.5) -> set[Link]:
    """Word links of one sentence from alpha [T, S] over its pieces (EOS dropped)."""
    check_choice("--pieces", pieces, PIECES)
    if pieces == "sum":
        return extract(word_weights(alpha, src_words, tgt_words), method, threshold)
    return {(src_words[i], tgt_words[j]) for i, j in extract(alpha, method, threshold)}


NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def grow_diag_final(forward: set[Link], backward: set[Link], src_len: int, tgt_len: int) -> set[Link]:
    """GROW-DIAG-FINAL (Koehn et al. 2003; Koehn 2010, sec. 4.5.3): start from the intersection;
    repeatedly add a union link next to (diagonals included) a link already kept whose source or
    target word is still unaligned, visiting links in source-then-target order; then, for each
    direction, add its links whose source or target word is still unaligned."""
    union = forward | backward
    links = forward & backward
    src_aligned, tgt_aligned = {i for i, _ in links}, {j for _, j in links}

    def add(i: int, j: int) -> bool:
        if (i in src_aligned and j in tgt_aligned) or (i, j) in links:
            return False
        links.add((i, j))
        src_aligned.add(i)
        tgt_aligned.add(j)
        return True

    grown = True
    while grown:
        grown = False
        for i in range(src_len):
            for j in range(tgt_len):
                if (i, j) in links:
                    for di, dj in NEIGHBOURS:
                        if (i + di, j + dj) in union:
                            grown = add(i + di, j + dj) or grown
    for direction in (forward, backward):
        for i in range(src_len):
            for j in range(tgt_len):
                if (i, j) in direction:
                    add(i, j)
    return links


def symmetrize(forward: set[Link], backward: set[Link], method: str, src_len: int, tgt_len: int) -> set[Link]:
    """Combine the links of a source->target model with those of a target->source model (both as
    (source, target)): intersection, union or grow-diag-final."""
    check_choice("--symmetrize", method, SYMMETRIZE)
    if method == "intersection":
        return forward & backward
    if method == "union":
        return forward | backward
    return grow_diag_final(forward, backward, src_len, tgt_len)
