"""The pieces of a beam-search step that seqattn times on their own: the figures behind TOPK_BLOCK /
TOPK_MIN_ROWS (seqattn/search/hypothesis.py), the fused self-attention projections
(MultiHeadAttention.fuse_projections) and the int8 linear layers against the int8 matmul peak.

    python benchmarks/step_ops.py [--rows 320] [--d-model 256] [--ffn 1024] [--vocab 8000] [--threads 2]

Prints the machine, then microseconds a call (median of 5 runs of 50 calls): top-k of each row's 10
best over [rows, vocab] and [64, vocab] scores with torch.topk and with top_k_rows; int8 W^Q, W^K, W^V
as three layers and as one; each int8 linear layer of a step (the projections, the FFN, the output
layer) with its GOP/s against the measured int8 matmul peak.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import typer
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nmt_speed import cpu_flags, cpu_model, matmul_peak  # noqa: E402

from seqattn.precision import quantize_int8  # noqa: E402
from seqattn.search.hypothesis import top_k_rows  # noqa: E402


def us(work: Callable[[], object], calls: int = 50) -> float:
    """Median over 5 runs of the microseconds a call of `work` takes (after 5 untimed calls)."""
    for _ in range(5):
        work()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            work()
        runs.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(runs)


def int8_layer(d_in: int, d_out: int) -> nn.Module:
    return quantize_int8(nn.Sequential(nn.Linear(d_in, d_out))).eval()


def main(
    rows: int = typer.Option(320, help="Hypotheses in a step (64 sentences x beam 5)."),
    d_model: int = typer.Option(256), ffn: int = typer.Option(1024), vocab: int = typer.Option(8000),
    threads: int = typer.Option(2),
) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    peak = matmul_peak(torch.device("cpu"), "int8") / 1e9  # GFLOP/s
    print(f"cpu {cpu_model()}; {cpu_flags()}; {threads} threads; int8 matmul peak {peak:.1f} GFLOP/s")
    with torch.inference_mode():
        for n in (rows, 64):
            x = torch.randn(n, vocab).log_softmax(-1)
            print(f"top-10 of [{n}, {vocab}]: torch.topk {us(lambda: x.topk(10, dim=-1)):.0f} us, "
                  f"top_k_rows {us(lambda: top_k_rows(x, 10)):.0f} us")
        h = torch.randn(rows, 1, d_model)
        three = [int8_layer(d_model, d_model) for _ in range(3)]
        fused = int8_layer(d_model, 3 * d_model)
        print(f"int8 W^Q, W^K, W^V over [{rows}, {d_model}]: three layers {us(lambda: [w(h) for w in three]):.0f} us, "
              f"fused {us(lambda: fused(h)):.0f} us")
        for d_in, d_out in ((d_model, d_model), (d_model, 3 * d_model), (d_model, ffn), (ffn, d_model), (d_model, vocab)):
            layer, x = int8_layer(d_in, d_out), torch.randn(rows, d_in)
            t = us(lambda: layer(x))
            gops = 2 * rows * d_in * d_out / t / 1e3
            print(f"int8 linear [{rows}, {d_in}] -> {d_out}: {t:.0f} us, {gops:.1f} GOP/s ({100 * gops / peak:.0f}% of the peak)")


if __name__ == "__main__":
    typer.run(main)
