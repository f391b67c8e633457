"""The statistical aligner of the alignment table: eflomal (Östling & Tiedemann 2016, PyPI `eflomal`,
`pip install -e '.[align]'`) trained on Multi30k's training pairs plus the gold test sentences, as
aligners are evaluated (the gold sentences are in the aligner's unsupervised training data): Multi30k
lower-cased and split at punctuation by a regex, the gold sentences (already tokenised) lower-cased.
eflomal gives the forward and reverse links; intersection and grow-diag-final come from
seqattn.alignment.symmetrize. Prints the AER of the four on the gold sentences and writes:

    OUT/{fwd,rev,intersection,grow-diag-final}.gold.align   the gold sentences' links (source first)
    OUT/train.SRC-TGT.align, OUT/train.TGT-SRC.align         Multi30k train's grow-diag-final links on its
                                                              whitespace-split words, one line per pair, for
                                                              train.guided_alignment of either direction
    OUT/train+gold.SRC-TGT.align, OUT/train+gold.TGT-SRC.align  the same followed by the gold sentences' links
                                                              (a model trained on Multi30k + the gold pairs)
    OUT/scores.json                                           AER, precision, recall, links of the four

    python recipes/alignment/eflomal_baseline.py de-en OUT    (RWTH German-English)
    python recipes/alignment/eflomal_baseline.py en-fr OUT    (Hansards English-French)

eflomal seeds its samplers from /dev/urandom, so two runs differ a little.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

import eflomal

from seqattn.alignment import symmetrize
from seqattn.config import data_root
from seqattn.data import read_lines
from seqattn.data.alignments import Link, read_hypothesis
from seqattn.evaluation.alignment import alignment_error_rate, read_gold

TOKEN = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")  # words (with inner hyphens, apostrophes) and single punctuation marks


def gold_set(pair: str) -> tuple[list[str], list[str], Path]:
    """The gold sentences (source, target, tokenised, as in the gold file's direction) and the gold file."""
    root = data_root(None) / "alignments"
    if pair == "de-en":
        folder = root / "de-en-rwth"
        src, tgt = ((folder / lang).read_text(encoding="latin-1").splitlines() for lang in ("de", "en"))
        n = len(read_gold(folder / "alignmentDeEn.talp", encoding="latin-1"))
        return src[:n], tgt[:n], folder / "alignmentDeEn.talp"
    folder = root / "en-fr-hansards"
    lines = (folder / "enfr.src-tgt").read_text(encoding="utf-8").splitlines()
    pairs = [line.split(" ||| ") for line in lines if line.strip()]
    return [s.strip() for s, _ in pairs], [t.strip() for _, t in pairs], folder / "enfr.gold"


def tokens_and_words(line: str) -> tuple[list[str], list[int]]:
    """A raw sentence -> its lower-cased regex tokens and, per token, its whitespace-split word."""
    tokens, words = [], []
    for w, word in enumerate(line.split()):
        pieces = TOKEN.findall(word.lower()) or [word.lower()]
        tokens += pieces
        words += [w] * len(pieces)
    return tokens, words


def to_words(links: set[Link], src_words: list[int], tgt_words: list[int]) -> set[Link]:
    """Links between tokens -> links between the whitespace words holding them."""
    return {(src_words[i], tgt_words[j]) for i, j in links}


def pharaoh(links: list[set[Link]]) -> str:
    return "".join(" ".join(f"{i}-{j}" for i, j in sorted(s)) + "\n" for s in links)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pair", choices=("de-en", "en-fr"), help="de-en: RWTH gold; en-fr: Hansards gold")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    src_lang, tgt_lang = args.pair.split("-")
    multi30k = data_root(None) / "multi30k"
    train = [tokens_and_words(line) for line in read_lines(multi30k / f"train.{src_lang}")]
    train_tgt = [tokens_and_words(line) for line in read_lines(multi30k / f"train.{tgt_lang}")]
    gold_src, gold_tgt, gold_path = gold_set(args.pair)
    src = [" ".join(t) for t, _ in train] + [s.lower() for s in gold_src]
    tgt = [" ".join(t) for t, _ in train_tgt] + [t.lower() for t in gold_tgt]
    args.out.mkdir(parents=True, exist_ok=True)
    fwd_path, rev_path = args.out / "fwd.all.align", args.out / "rev.all.align"
    start = time.perf_counter()
    eflomal.Aligner().align(src, tgt, links_filename_fwd=str(fwd_path), links_filename_rev=str(rev_path))
    minutes = (time.perf_counter() - start) / 60
    fwd, rev = read_hypothesis(fwd_path), read_hypothesis(rev_path)
    lengths = [(len(s.split()), len(t.split())) for s, t in zip(src, tgt)]
    gdf = [symmetrize(f, r, "grow-diag-final", *n) for f, r, n in zip(fwd, rev, lengths)]
    n_train = len(train)
    gold = read_gold(gold_path, encoding="latin-1" if args.pair == "de-en" else "utf-8")
    scores = {}
    for name, links in (("fwd", fwd), ("rev", rev), ("intersection", [f & r for f, r in zip(fwd, rev)]),
                        ("grow-diag-final", gdf)):
        (args.out / f"{name}.gold.align").write_text(pharaoh(links[n_train:]), encoding="utf-8")
        score = alignment_error_rate(gold, links[n_train:], str(gold_path), name)
        scores[name] = {"aer": score.aer, "precision": score.precision, "recall": score.recall, "links": score.links}
        print(f"eflomal {args.pair} {name}: {score.text}")
    words = [to_words(links, s, t) for links, (_, s), (_, t) in zip(gdf[:n_train], train, train_tgt)] + gdf[n_train:]
    for name, lines in (("train", words[:n_train]), ("train+gold", words)):
        (args.out / f"{name}.{src_lang}-{tgt_lang}.align").write_text(pharaoh(lines), encoding="utf-8")
        (args.out / f"{name}.{tgt_lang}-{src_lang}.align").write_text(
            pharaoh([{(j, i) for i, j in links} for links in lines]), encoding="utf-8")
    scores["machine"] = f"{platform.processor() or platform.machine()}, eflomal {minutes:.1f} min"
    (args.out / "scores.json").write_text(json.dumps(scores, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
