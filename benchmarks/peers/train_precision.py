"""The precision `make bench-peers` trains its model in: bf16 where this CPU's bf16 matmuls outrun
its fp32 ones, else fp32.

    python benchmarks/peers/train_precision.py [--threads 2] [--n 2048]

Prints `bf16` or `fp32` on stdout and both measured peaks (benchmarks/nmt_speed.py's matmul_peak, an
n x n product on `--threads` threads) on stderr. The CPU flags alone do not decide it: a 2-core Intel
Xeon listing avx512_bf16 (with AMX not exposed to it) ran 2048^2 bf16 products at 132-197 GFLOP/s
against 305-382 in fp32, and bf16 Transformer updates at 0.61-0.64x the fp32 ones.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nmt_speed import matmul_peak  # noqa: E402


def main(
    threads: int = typer.Option(2, min=1, help="Torch threads for both products."),
    n: int = typer.Option(2048, min=64, help="Size of the square products."),
) -> None:
    """Print bf16 if a bf16 n x n matmul runs faster than an fp32 one here, else fp32."""
    torch.set_num_threads(threads)
    cpu = torch.device("cpu")
    fp32, bf16 = (matmul_peak(cpu, precision, n) / 1e9 for precision in ("fp32", "bf16"))
    print(f"train_precision: {n}^2 matmul on {threads} threads: fp32 {fp32:.1f}, bf16 {bf16:.1f} GFLOP/s",
          file=sys.stderr)
    print("bf16" if bf16 > fp32 else "fp32")


if __name__ == "__main__":
    typer.run(main)
