"""seqattn's and CTranslate2's beam search on one model, in alternating processes, round by round.

    python benchmarks/peers/decode_rounds.py CHECKPOINT [--work runs/bench-peers/peers] [--rounds 3] \
        [--precision int8] [--compute-type int8] [--threads 2] [--sentences 1000] [--peers-python PY]

On a shared 2-core machine one pass of either tool ranges over 30-40% from one minute to the next,
so a single pass of each (the `make bench-peers` table) can put either ahead. This runs one process
of each per round, seqattn first in rounds 1, 3, ... and CTranslate2 first in rounds 2, 4, ..., and prints each
round's sentences/s, the ratio seqattn / CTranslate2 per round and the medians. CTranslate2 decodes
WORK/ct2_seqattn, the conversion of CHECKPOINT that `make bench-peers` leaves there, over
WORK/test.en.sp (the first test2016 sentences in pieces) with the options onmt_speed.py gives it;
seqattn decodes the same sentences as benchmarks/decode_ab.py does (`Model.translate`, beam 5,
batches of 64). Run it with seqattn's Python; the peers' venv (benchmarks/peers/setup.sh) runs
CTranslate2.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import typer
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from nmt_speed import cpu_flags, cpu_model  # noqa: E402

SEARCH = yaml.safe_load((REPO / "recipes/vaswani2017/transformer.yaml").read_text(encoding="utf-8"))["search"]


def last_json(cmd: list[str], what: str) -> dict:
    """Run `cmd` (this checkout's seqattn first on its path) -> the JSON object its last line of output
    is; a failure stops with its last line of error."""
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if run.returncode:
        last = (run.stderr.strip().splitlines() or ["no message"])[-1]
        raise SystemExit(f"decode_rounds: {what} failed: {last}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(
    checkpoint: Path,
    work: Path = typer.Option(Path("runs/bench-peers/peers"), help="onmt_speed.py's folder of `make bench-peers`."),
    rounds: int = typer.Option(3, help="Rounds of one process per tool."),
    precision: str = typer.Option("int8", help="seqattn's precision: fp32, bf16 or int8."),
    compute_type: str = typer.Option("int8", help="CTranslate2's compute type: float32 or int8."),
    threads: int = typer.Option(2, help="Threads of each tool."),
    sentences: int = typer.Option(1000, help="First test2016 sentences; WORK/test.en.sp must hold as many."),
    peers_python: Path = typer.Option(HERE / ".venv/bin/python", help="The Python with CTranslate2 (setup.sh's venv)."),
) -> None:
    ct2_model, pieces = work / "ct2_seqattn", work / "test.en.sp"
    for path, hint in ((ct2_model, "run `make bench-peers CHECKPOINT=...` first"), (pieces, "run `make bench-peers` first"),
                       (peers_python, "run `bash benchmarks/peers/setup.sh`")):
        if not path.exists():
            raise SystemExit(f"decode_rounds: {path}: not found; {hint}")
    lines = pieces.read_text(encoding="utf-8").splitlines()
    if len(lines) != sentences:
        raise SystemExit(f"decode_rounds: {pieces} holds {len(lines)} sentences, not --sentences {sentences}")
    max_len = int(SEARCH["max_len_a"] * (max(len(line.split()) for line in lines) + 1) + SEARCH["max_len_b"])
    with tempfile.TemporaryDirectory() as tmp:
        # decode_ab.py's child process times this checkout (its two tree arguments are unused there)
        ours = [sys.executable, str(REPO / "benchmarks/decode_ab.py"), str(checkpoint.resolve()), str(REPO), str(REPO),
                "--child", "--precision", precision, "--passes", "1", "--sentences", str(sentences),
                "--threads", str(threads)]
        theirs = [str(peers_python), str(HERE / "ct2_decode.py"), str(ct2_model), str(pieces), f"{tmp}/ct2.hyp",
                  "--threads", str(threads), "--beam", "5", "--batch", str(SEARCH["batch_size"]),
                  "--max-len", str(max_len - 1), "--length-penalty", str(SEARCH["alpha"]), "--compute-type", compute_type]
        per_s: dict[str, list[float]] = {"seqattn": [], "ct2": []}
        for r in range(rounds):
            for tool in ("seqattn", "ct2") if r % 2 == 0 else ("ct2", "seqattn"):
                if tool == "seqattn":
                    per_s[tool].append(last_json(ours, f"seqattn {precision}")["per_s"][0])
                else:
                    result = last_json(theirs, f"CTranslate2 {compute_type}")
                    per_s[tool].append(result["sentences"] / result["seconds"])
            print(f"round {r + 1}: seqattn {precision} {per_s['seqattn'][-1]:.1f}, CTranslate2 {compute_type} "
                  f"{per_s['ct2'][-1]:.1f} sentences/s", flush=True)
    ratios = [a / b for a, b in zip(per_s["seqattn"], per_s["ct2"])]
    print(f"cpu {cpu_model()}; {cpu_flags()}; {threads} threads; beam 5, {sentences} sentences, batches of "
          f"{SEARCH['batch_size']}")
    print(f"sentences/s, median of {rounds} rounds: seqattn {precision} {statistics.median(per_s['seqattn']):.1f}, "
          f"CTranslate2 {compute_type} {statistics.median(per_s['ct2']):.1f}")
    print(f"seqattn / CTranslate2 per round: {' '.join(f'{x:.3f}' for x in ratios)}; median {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    typer.run(main)
