"""Word alignments as data: Pharaoh files (`i-j` links, one sentence a line) read and checked, and
word links turned into the piece-level targets of guided alignment training (Chen et al. 2016;
Garg et al. 2019).

Words are the whitespace-split words of a sentence; sentencepiece splits at whitespace before it
segments, so every piece belongs to one word and a piece that starts with '▁' begins the next one
(`subwords.words_of_pieces`). A word link (i, j) links every piece of target word j to every piece
of source word i; a target piece's row of the target matrix is its links normalised to sum to 1,
and a target piece without links (and the EOS row and column) is all zero, so it contributes
nothing to the loss.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor

from seqattn.errors import SeqattnError

Link = tuple[int, int]  # (source word, target word), 0-based
LINK = re.compile(r"^(\d+)([-p?])(\d+)$")


def read_lines(path: Path, encoding: str) -> list[str]:
    """The lines of an alignment or tokenised text file without the blank ones at its end."""
    path = Path(path)
    if not path.is_file():
        raise SeqattnError(f"{path}: file not found; check the path")
    try:
        lines = path.read_text(encoding=encoding).splitlines()
    except UnicodeDecodeError as err:
        raise SeqattnError(f"{path}: not valid {encoding} (byte {err.start}); give its --encoding") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def parse_link(token: str, base: int, reverse: bool, where: str, possible_allowed: bool) -> tuple[Link, bool]:
    """`i-j`, `ipj` or `i?j` -> ((i, j) 0-based, in the asked direction; whether it is possible only)."""
    found = LINK.match(token)
    if found is None or (found.group(2) != "-" and not possible_allowed):
        kinds = "i-j (sure), ipj or i?j (possible)" if possible_allowed else "i-j"
        raise SeqattnError(f"{where}: link {token!r} is not {kinds}; check the file's format (--alignment-format)")
    i, j = int(found.group(1)) - base, int(found.group(3)) - base
    if i < 0 or j < 0:
        raise SeqattnError(f"{where}: link {token!r} is below index base {base}; give the index base of the file (--gold-base, --hyp-base: 0 or 1)")
    return ((j, i) if reverse else (i, j)), found.group(2) != "-"


def read_hypothesis(path: Path, base: int = 0, reverse: bool = False, encoding: str = "utf-8") -> list[set[Link]]:
    """Hypothesis alignments in Pharaoh format (`i-j`), one set of links a sentence."""
    return [{parse_link(token, base, reverse, f"{path} line {n}", possible_allowed=False)[0] for token in line.split()}
            for n, line in enumerate(read_lines(path, encoding), start=1)]


def piece_links(links: set[Link], src_words: list[int], tgt_words: list[int]) -> list[Link]:
    """Word links -> (source piece, target piece) links: every piece of target word j with every piece
    of source word i, for each link (i, j). src_words [S], tgt_words [T]: the word of each piece."""
    src_pieces: dict[int, list[int]] = {}
    for piece, word in enumerate(src_words):
        src_pieces.setdefault(word, []).append(piece)
    by_target: dict[int, set[int]] = {}
    for i, j in links:
        by_target.setdefault(j, set()).update(src_pieces.get(i, ()))
    return sorted((s, t) for t, word in enumerate(tgt_words) for s in by_target.get(word, ()))


def alignment_target(links: list[Link], src_len: int, tgt_len: int) -> Tensor:
    """Piece links (s, t) -> the guided alignment target [tgt_len, src_len]: row t uniform over the
    source pieces linked to target piece t, all zero without links."""
    target = torch.zeros(tgt_len, src_len)
    if links:
        s, t = torch.tensor(links).T
        target[t, s] = 1.0
    return target / target.sum(dim=1, keepdim=True).clamp(min=1.0)


def guided_links(path: Path, src_words: list[list[int]], tgt_words: list[list[int]]) -> list[list[Link]]:
    """The piece links of each training pair from the Pharaoh file `path` (0-based `i-j`, source word
    first, one line per pair, in the order of the training files). src_words / tgt_words: per pair,
    the word of each piece. A different number of lines or a link beyond its sentence stops with the
    file and line."""
    lines = read_lines(path, "utf-8")
    if len(lines) != len(src_words):
        raise SeqattnError(f"{path}: {len(lines)} lines, but the training split has {len(src_words)} pairs; "
                           "give one line of links per training pair, in the same order (train.guided_alignment)")
    result = []
    for n, (line, src, tgt) in enumerate(zip(lines, src_words, tgt_words), start=1):
        links = {parse_link(token, 0, False, f"{path} line {n}", possible_allowed=False)[0] for token in line.split()}
        n_src, n_tgt = max(src, default=-1) + 1, max(tgt, default=-1) + 1
        outside = sorted((i, j) for i, j in links if i >= n_src or j >= n_tgt)
        if outside:
            raise SeqattnError(f"{path} line {n}: link {outside[0][0]}-{outside[0][1]} is beyond the pair's {n_src} "
                               f"source and {n_tgt} target words (0-based, source first, whitespace-split words)")
        result.append(piece_links(links, src, tgt))
    return result
