"""Beam-search speed of two versions of seqattn on one checkpoint, in alternating processes.

    python benchmarks/decode_ab.py CHECKPOINT TREE_A TREE_B [--precision int8] [--rounds 8] [--sentences 1000]

TREE_A and TREE_B are checkouts (e.g. `git worktree add /tmp/base HEAD~1` and `.`). Each round runs one
process per tree, A then B then B then A on the next round, each timing `--passes` passes of beam-5
search (`Model.translate`, batches of 64) over the first test2016 sentences after a warm-up batch.
On a shared 2-core machine one version's passes range over 30-40% from one minute to the next, so a
difference of a few percent shows only in the ratio B / A per round and its median, which this prints
with the machine and the BLEU of each tree's output (they may differ where bf16 ties break differently).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import typer

from seqattn.config import data_root

HERE = Path(__file__).resolve()


def one_process(checkpoint: str, precision: str, sentences: int, passes: int, threads: int) -> None:
    """In the child: decode and print {"per_s": [...], "bleu": ...} as one JSON line."""
    import torch
    import seqattn
    from seqattn.data import load_split
    from seqattn.evaluation import corpus_bleu

    torch.set_num_threads(threads)
    model = seqattn.load(checkpoint, precision=precision)
    lines, refs = (side[:sentences] for side in load_split(model.cfg.data, model.cfg.data.test))
    model.translate(lines[:64], beam_size=5)  # warm-up
    per_s, best = [], []
    for _ in range(passes):
        start = time.perf_counter()
        best = [n[0].text for n in model.translate(lines, beam_size=5, batch_size=64)]
        per_s.append(len(lines) / (time.perf_counter() - start))
    print(json.dumps({"per_s": per_s, "bleu": corpus_bleu(best, [refs]).score, "seqattn": seqattn.__file__}))


def main(
    checkpoint: Path, tree_a: Path, tree_b: Path,
    precision: str = typer.Option("int8", help="fp32, bf16 or int8, as `translate --precision`."),
    rounds: int = typer.Option(8, help="Rounds of one process per tree."),
    passes: int = typer.Option(2, help="Timed passes per process (the process's median is used)."),
    sentences: int = typer.Option(1000, help="First test2016 sentences decoded."),
    threads: int = typer.Option(2, help="torch threads."),
    child: bool = typer.Option(False, hidden=True),
) -> None:
    if child:
        return one_process(str(checkpoint), precision, sentences, passes, threads)
    results: dict[Path, list[dict]] = {tree_a: [], tree_b: []}
    for r in range(rounds):
        for tree in (tree_a, tree_b) if r % 2 == 0 else (tree_b, tree_a):
            # both trees read the data this one reads (a tree's default data root lies beside it)
            env = {**os.environ, "PYTHONPATH": str(tree.resolve()), "SEQATTN_DATA_ROOT": str(data_root(None).resolve())}
            cmd = [sys.executable, str(HERE), str(checkpoint.resolve()), str(tree_a), str(tree_b), "--child",
                   "--precision", precision, "--passes", str(passes), "--sentences", str(sentences),
                   "--threads", str(threads)]
            run = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if run.returncode:
                last = (run.stderr.strip().splitlines() or ["no message"])[-1]
                raise SystemExit(f"decode_ab: the process of {tree} failed: {last}")
            result = json.loads(run.stdout.strip().splitlines()[-1])
            if not Path(result["seqattn"]).is_relative_to(tree.resolve()):
                raise SystemExit(f"decode_ab: {tree} is not a seqattn checkout: its process imported {result['seqattn']}")
            results[tree].append(result)
    from nmt_speed import cpu_flags, cpu_model  # here, not in the processes, which import another seqattn

    print(f"cpu {cpu_model()}; {cpu_flags()}; {threads} threads; {precision}; beam 5, {sentences} sentences")
    medians = {}
    for tree, runs in results.items():
        medians[tree] = [statistics.median(run["per_s"]) for run in runs]
        print(f"{tree}: sentences/s median {statistics.median(medians[tree]):.1f} (per process "
              f"{' '.join(f'{x:.1f}' for x in medians[tree])}), BLEU {runs[0]['bleu']:.2f}")
    ratios = [b / a for a, b in zip(medians[tree_a], medians[tree_b])]
    print(f"B / A per round: {' '.join(f'{x:.3f}' for x in ratios)}; median {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    typer.run(main)
