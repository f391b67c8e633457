"""Word alignments scored against human ones: alignment error rate, precision and recall
(Och & Ney 2003, sec. 5):

    precision = |A ∩ P| / |A|,   recall = |A ∩ S| / |S|,   AER = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|)

with A the hypothesis links, S the sure and P the possible gold links (S ⊆ P), summed over the corpus.

Formats. Pharaoh / talp: one sentence a line, links `i-j` (sure), `ipj` or `i?j` (possible; gold
only). WPT 2003: one link a line, `sentence i j [S|P]` (S when the kind is missing), sentences
numbered from 1. Indices are 0-based or 1-based (`base`); `reverse` swaps i and j, so gold and
hypothesis can be brought to the same direction. Blank lines at the end of a file are not sentences.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from seqattn.data.alignments import Link, parse_link, read_lines
from seqattn.errors import SeqattnError

FORMATS = ("talp", "wpt")


@dataclass
class Gold:
    """One sentence's gold links: `sure` ⊆ `possible`."""

    sure: set[Link] = field(default_factory=set)
    possible: set[Link] = field(default_factory=set)


@dataclass
class AlignmentScore:
    aer: float  # x100
    precision: float  # x100
    recall: float  # x100
    links: int  # hypothesis links

    @property
    def text(self) -> str:
        """As the reference outputs write it: `AER (precision/recall/links)`."""
        return f"AER {self.aer:.1f}% ({self.precision:.1f}%/{self.recall:.1f}%/{self.links})"


def read_gold(path: Path, fmt: str = "talp", base: int = 1, reverse: bool = False, encoding: str = "utf-8") -> list[Gold]:
    """Gold alignments of a corpus, one Gold a sentence."""
    if fmt not in FORMATS:
        raise SeqattnError(f"--alignment-format {fmt}: choose one of {', '.join(FORMATS)}")
    lines = read_lines(path, encoding)
    if fmt == "talp":
        gold = []
        for n, line in enumerate(lines, start=1):
            g = Gold()
            for token in line.split():
                link, possible_only = parse_link(token, base, reverse, f"{path} line {n}", possible_allowed=True)
                g.possible.add(link)
                if not possible_only:
                    g.sure.add(link)
            gold.append(g)
        return gold
    by_sentence: dict[int, Gold] = {}
    for n, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (3, 4, 5) or not all(f.isdigit() for f in fields[:3]) or (
                len(fields) > 3 and fields[3] not in ("S", "P")):
            raise SeqattnError(f"{path} line {n}: {line.strip()!r} is not `sentence i j [S|P]` (WPT format)")
        link, _ = parse_link(f"{fields[1]}-{fields[2]}", base, reverse, f"{path} line {n}", possible_allowed=False)
        g = by_sentence.setdefault(int(fields[0]), Gold())
        g.possible.add(link)
        if len(fields) == 3 or fields[3] == "S":
            g.sure.add(link)
    return [by_sentence.get(s, Gold()) for s in range(1, max(by_sentence, default=0) + 1)]


def check_lengths(alignments: list[set[Link]], lengths: list[tuple[int, int]], name: str) -> None:
    """Every link inside its sentence: lengths[k] = (source words, target words) of sentence k."""
    for n, (links, (src, tgt)) in enumerate(zip(alignments, lengths), start=1):
        outside = sorted((i, j) for i, j in links if i >= src or j >= tgt)
        if outside:
            i, j = outside[0]
            raise SeqattnError(f"{name} line {n}: link {i}-{j} (0-based) is beyond the sentence of {src} source and "
                               f"{tgt} target words; check the index base (--gold-base, --hyp-base) and the direction (--reverse-gold, --reverse-hyp)")


def check_sentence_counts(gold: int, hyp: int, gold_name: str, hyp_name: str, skip: int = 0) -> None:
    """One line naming where the shorter file runs out unless hypothesis line k holds gold sentence skip + k
    (`gold` and `hyp`: their numbers of sentences)."""
    if gold - skip == hyp:
        return
    skipped = f" (the first {skip} skipped: --skip-gold)" if skip else ""
    where = (f"{hyp_name} ends at line {hyp}, before sentence {skip + hyp + 1} of {gold_name}" if hyp < gold - skip
             else f"{gold_name} ends at sentence {gold}, {hyp_name} goes on at line {gold - skip + 1}")
    raise SeqattnError(f"{gold_name} has {gold} sentences{skipped}, {hyp_name} has {hyp}: {where}; "
                       "give alignments of the same sentences")


def alignment_error_rate(gold: list[Gold], hyp: list[set[Link]], gold_name: str = "gold",
                         hyp_name: str = "hypothesis", skip: int = 0) -> AlignmentScore:
    """AER, precision and recall (x100) of `hyp` against `gold` after its first `skip` sentences
    (hyp[k] against gold[skip + k]), counted over the whole corpus."""
    check_sentence_counts(len(gold), len(hyp), gold_name, hyp_name, skip)
    a = s = a_s = a_p = 0
    for g, h in zip(gold[skip:], hyp):
        a, s = a + len(h), s + len(g.sure)
        a_s, a_p = a_s + len(h & g.sure), a_p + len(h & g.possible)
    precision = a_p / a if a else 0.0
    recall = a_s / s if s else 0.0
    aer = 1.0 - (a_s + a_p) / (a + s) if a + s else 0.0
    return AlignmentScore(100 * aer, 100 * precision, 100 * recall, a)
