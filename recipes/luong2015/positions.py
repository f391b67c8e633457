"""Where Luong models look, against human alignments: for each checkpoint, its attention's AER
(argmax per target word, pieces to words by `any`, as `seqattn align`) and, for local attention, its
positions p_t (seqattn.alignment.positions: p_t / S, gold inside the window, distance, saturated
sigmoid), beside local-m's p_t = t and the diagonal, over the gold sentences; one markdown table.

    python recipes/luong2015/positions.py CKPT [CKPT ...] --src runs/alignment/gold/de/src \
        --tgt runs/alignment/gold/de/tgt --gold ../shared/data/alignments/de-en-rwth/alignmentDeEn.talp \
        --reverse-gold [--window 5]

--src/--tgt: the gold sentence pairs as the model reads them (tokenised, UTF-8, source first);
--gold: their talp links (1-based); --reverse-gold when the gold file gives the target word first
(RWTH: German first, for an En->De model).
"""
import argparse
from pathlib import Path

import torch

from seqattn.alignment import AlignOptions, attention_links, encode_words
from seqattn.alignment.positions import (
    forced_positions, local_attention, position_score, reference_positions,
)
from seqattn.api import Model
from seqattn.data.alignments import read_lines
from seqattn.errors import SeqattnError
from seqattn.evaluation.alignment import alignment_error_rate, read_gold

CPU = torch.device("cpu")


def row(name: str, score, aer: str) -> str:
    return (f"| {name} | {aer} | {score.relative:.2f} | {score.in_window:.1f} | {score.distance:.1f} | "
            f"{score.at_end:.1f} | {score.steps} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--tgt", type=Path, required=True)
    parser.add_argument("--gold", type=Path, required=True)
    parser.add_argument("--reverse-gold", action="store_true")
    parser.add_argument("--window", type=int, default=5, help="D of the reference rows (the models use their own).")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    gold = read_gold(args.gold, "talp", 1, reverse=args.reverse_gold, encoding="latin-1")
    src_words = [line.split() for line in read_lines(args.src, "utf-8")]
    tgt_words = [line.split() for line in read_lines(args.tgt, "utf-8")]
    print("| model | AER % | mean p_t / S | gold in window % | distance (pieces) | p_t / S < 0.02 or > 0.98 % | steps |")
    print("|---|---|---|---|---|---|---|")
    for n, path in enumerate(args.checkpoints):
        loaded = Model.from_checkpoints([path], CPU)
        loaded.expect("translation")
        model, task = loaded.model, loaded.task
        sources = [encode_words(task.src_tok, words) for words in src_words]
        targets = [encode_words(task.tgt_tok, words) for words in tgt_words]
        links = attention_links(model, loaded.cfg.model.arch, sources, targets, AlignOptions(), args.batch_size, CPU,
                                log=lambda _: None)
        aer = f"{alignment_error_rate(gold, links).aer:.1f}"
        try:
            window = local_attention(model).D
        except SeqattnError:  # global attention: its AER only
            print(f"| {path} | {aer} | - | - | - | - | - |", flush=True)
        else:
            positions = forced_positions(model, sources, targets, args.batch_size, CPU)
            print(row(str(path), position_score(positions, sources, targets, gold, window), aer), flush=True)
        if n == 0:
            for name, reference in reference_positions(sources, targets).items():
                print(row(name, position_score(reference, sources, targets, gold, args.window), "-"), flush=True)

if __name__ == "__main__":
    main()
