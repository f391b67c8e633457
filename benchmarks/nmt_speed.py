"""Speed of one recipe on Multi30k: training throughput and MFU, greedy and beam-5 decoding, peak memory.

    python benchmarks/nmt_speed.py recipes/bahdanau2015/rnnsearch.yaml train.threads=1 --steps 30 --json speed.json

Training runs the real `Trainer.update` step; decoding runs `Predictor` over the first test
sentences in each of --decode-precisions (fp32, bf16, int8, ...; default: the training
precision), its figures under keys that start with the precision (`int8_beam5_sentences_per_s`).
MFU: the FLOPs per target token of the training step (torch's FlopCounterMode over the warm-up
updates: matmuls, convolutions and attention, forward and backward; torch's fused CPU attention
kernel is not counted, so the figure is a lower bound) times the timed target tokens per second,
as a share of the measured peak of a square matmul (--peak-n, 2048) in the training precision
on the same threads. Decoding MFU: the FLOPs of the same search, counted in a second untimed pass
(the matmuls of the encoder and of every step, the steps' attention included, int8 linear layers too; not the
encoder's fused attention kernel, int8 recurrent layers, beam bookkeeping, softmaxes or norms),
over its timed seconds, against the peak of the same square product in the decoding precision (int8:
torch's int8 linear layer, as int8 decoding runs it). Without --checkpoint the model is untrained,
so its decoding figures are not representative. The run works in a temporary out_dir unless an `out_dir=...` override is given.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
import typer
from torch import nn
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from cli import CONFIG, OVERRIDES, log, user_errors
from seqattn.config import Config, load_config
from seqattn.data import load_split
from seqattn.errors import SeqattnError
from seqattn.evaluation import corpus_bleu
from seqattn.models import Seq2Seq
from seqattn.inference import Predictor
from seqattn.precision import decode_dtype, quantize_int8
from seqattn.tasks import Task
from seqattn.training import Trainer, load_model, resolve_device

Row = tuple[str, Any, str]  # key, value, unit
JSON_OUT = typer.Option(None, "--json", help="Also write the figures to this JSON file.")
UNTRAINED = ("untrained model: decoding tends to run to the maximum length, so its speed is not "
             "representative; pass --checkpoint")


def report(rows: list[Row], json_out: Optional[Path], width: int = 24) -> None:
    """Print the figures one a line, and write them as JSON to `json_out` if given."""
    for key, value, unit in rows:
        print(f"{key:<{width}} {f'{value:.1f}' if isinstance(value, float) else value} {unit}".rstrip())
    if json_out is not None:
        json_out.write_text(json.dumps({key: value for key, value, _ in rows}, indent=2) + "\n", encoding="utf-8")


def clock(device: torch.device) -> float:
    """perf_counter once the device has finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def cpu_model() -> str:
    info = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
             if line.startswith("model name")] if info.is_file() else []
    return names[0] if names else platform.processor() or "unknown"


def cpu_flags(wanted: tuple[str, ...] = ("avx512_bf16", "amx_bf16", "avx512_vnni")) -> str:
    """Which of the CPU flags that bf16 and int8 speed hang on /proc/cpuinfo lists."""
    info = Path("/proc/cpuinfo")
    flags = {flag for line in info.read_text().splitlines() if line.startswith("flags")
             for flag in line.split(":", 1)[1].split()} if info.is_file() else set()
    return ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in wanted)


def machine(trainer: Trainer, decode_precisions: list[str] | None = None) -> list[Row]:
    """The CPU, threads, torch, device and training precision; the decoding precisions when given."""
    dev = trainer.device
    rows = [("cpu", cpu_model(), ""), ("cpu_flags", cpu_flags(), ""), ("logical_cores", os.cpu_count(), "cores"),
            ("torch_threads", torch.get_num_threads(), "threads"), ("torch", torch.__version__, ""),
            ("device", str(dev), "")]
    if dev.type == "cuda":
        rows.append(("gpu", torch.cuda.get_device_name(dev), ""))
    train_dtype = str(trainer.amp_dtype or torch.float32).removeprefix("torch.")
    rows.append(("train_precision", train_dtype, f"(train.precision={trainer.cfg.train.precision})"))
    if decode_precisions is not None:
        rows.append(("decode_precisions", ",".join(decode_precisions), "(--decode-precisions)"))
    return rows


def precision_name(dtype: torch.dtype | None) -> str:
    """The precision option of an autocast dtype (None: fp32)."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def matmul_peak(device: torch.device, precision: str, n: int = 2048, repeat: int = 10) -> float:
    """FLOP/s of an n x n by n x n product (2 n^3 FLOPs) in `precision` (fp32, bf16, fp16: a matmul
    in that dtype; int8: torch's int8 linear layer of int8 decoding), the best of `repeat` timings."""
    a = torch.randn(n, n, device=device)
    if precision == "int8":
        product = quantize_int8(nn.Sequential(nn.Linear(n, n, bias=False)))
    else:
        dtype = decode_dtype(precision, device, "--decode-precisions") or torch.float32
        a, b = a.to(dtype), torch.randn(n, n, device=device).to(dtype)
        product = functools.partial(torch.matmul, other=b)  # a @ b
    with torch.no_grad():
        product(a)  # warm-up
        best = float("inf")
        for _ in range(repeat):
            start = clock(device)
            product(a)
            best = min(best, clock(device) - start)
    return 2 * n**3 / best


def int8_linear_flops(x_shape: torch.Size, packed: Any, *args: Any, **kwargs: Any) -> int:
    """FLOPs of torch's int8 linear layer (quantized::linear_dynamic) for FlopCounterMode: 2 per
    multiply-add of x [..., in] by the packed int8 weight [out, in]."""
    out_features, in_features = packed.unpack()[0].shape
    return 2 * x_shape[:-1].numel() * in_features * out_features


INT8_FLOPS = {torch.ops.quantized.linear_dynamic: int8_linear_flops}


def timed_updates(trainer: Trainer, batches: Iterator[list[int]], steps: int) -> tuple[int, int, float]:
    """Real training updates on the next `steps` batches -> (target tokens, examples, seconds)."""
    tokens = examples = 0
    start = clock(trainer.device)
    for ids in itertools.islice(batches, steps):
        tokens += trainer.update(ids)[1]
        examples += len(ids)
    return tokens, examples, clock(trainer.device) - start


def profiled(work: Callable[[], Any], device: torch.device, rows: int) -> str:
    """torch.profiler's table of `work()` (one training update, one search pass): its `rows` costliest
    ops by self CPU time (calls, total and mean time)."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        work()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40)


def train_speed(trainer: Trainer, steps: int, warmup: int, peak: float, profile_rows: int = 0) -> list[Row]:
    """Target tokens and sentences per second over `steps` updates after `warmup` untimed ones, whose
    FLOPs per target token give the achieved FLOP/s and MFU; with `profile_rows`, one more update
    profiled, its costliest ops printed."""
    t = trainer.cfg.train
    batches = itertools.cycle(trainer.train_data.batches(t.batch_tokens, shuffle=True, seed=t.seed))
    counter, counted = FlopCounterMode(display=False), 0
    with counter:
        for ids in itertools.islice(batches, max(warmup, 1)):
            counted += trainer.update(ids)[1]
    flops_per_token = counter.get_total_flops() / counted
    tokens, sentences, seconds = timed_updates(trainer, batches, steps)
    if profile_rows:
        ids = next(batches)
        print(profiled(lambda: trainer.update(ids), trainer.device, profile_rows))
    achieved = flops_per_token * tokens / seconds
    return [("train_batch_tokens", t.batch_tokens, "target tokens per batch, padding included"),
            ("train_steps", steps, f"updates timed after {max(warmup, 1)} warm-up"),
            ("train_ms_per_step", 1000 * seconds / steps, "ms"),
            ("train_tgt_tokens_per_s", tokens / seconds, "tokens/s"),
            ("train_sentences_per_s", sentences / seconds, "sentences/s"),
            ("train_mflop_per_tgt_token", flops_per_token / 1e6, "MFLOP (forward + backward)"),
            ("train_gflop_per_s", achieved / 1e9, "GFLOP/s"),
            ("train_mfu", 100 * achieved / peak, "% of the matmul peak")]


def step_share(model: Seq2Seq, work: Callable[[], Any], device: torch.device) -> float:
    """The fraction of `work()`'s wall time spent inside `model.step` (timed by wrapping it)."""
    step, inside = model.step, [0.0]

    def timed_step(*args: Any) -> Any:
        start = clock(device)
        out = step(*args)
        inside[0] += clock(device) - start
        return out

    model.step = timed_step  # type: ignore[method-assign]
    try:
        start = clock(device)
        work()
        return inside[0] / (clock(device) - start)
    finally:
        del model.step  # the class's method again


def decode_speed(
    model: Seq2Seq, task: Task, trainer: Trainer, lines: list[str], refs: list[str],
    peak: float, precision: str = "fp32", profile_rows: int = 0,
) -> list[Row]:
    """Sentences and output tokens (EOS included) per second for greedy and beam-5 search in
    `precision` (fp32, bf16, fp16 under autocast; int8: `model` already quantised), their FLOPs and
    MFU, and the sacreBLEU of their output against `refs`; keys start with the precision. With
    `profile_rows`, one more beam-5 pass profiled, its costliest ops printed, and the share of its
    time spent in the model's decoder steps (the rest is the search's own work)."""
    src_ids, search = task.inputs(lines), trainer.cfg.search
    amp_dtype = decode_dtype(precision, trainer.device, "--decode-precisions")
    rows = []
    for beam in (1, 5):
        beam_cfg = dataclasses.replace(search, beam_size=beam, nbest=1)
        translator = Predictor(task, model, beam_cfg, trainer.device, amp_dtype=amp_dtype)
        translator.predict(src_ids[:2])  # warm-up
        start = clock(trainer.device)
        best = [hyps[0] for hyps in translator.predict(src_ids)]
        seconds = clock(trainer.device) - start
        with FlopCounterMode(display=False, custom_mapping=INT8_FLOPS) as counter:  # the same search again, untimed
            translator.predict(src_ids)
        flops = counter.get_total_flops()
        tokens = sum(len(h.tokens) + h.finished for h in best)
        bleu = corpus_bleu([task.text(h) for h in best], [refs]).score
        key = f"{precision}_beam{beam}"
        if profile_rows and beam > 1:
            print(f"{key}: one more pass, profiled")
            print(profiled(lambda: translator.predict(src_ids), trainer.device, profile_rows))
            rows.append((f"{key}_step_share", 100 * step_share(model, lambda: translator.predict(src_ids), trainer.device),
                         "% of the search's time in model.step"))
        rows += [(f"{key}_bleu", bleu, f"sacreBLEU of the first {len(best)} test sentences"),
                 (f"{key}_sentences_per_s", len(best) / seconds, "sentences/s"),
                 (f"{key}_tgt_tokens_per_s", tokens / seconds, "tokens/s"),
                 (f"{key}_mflop_per_sentence", flops / len(best) / 1e6, "MFLOP (matmuls and attention)"),
                 (f"{key}_gflop_per_s", flops / seconds / 1e9, "GFLOP/s"),
                 (f"{key}_mfu", 100 * flops / seconds / peak, f"% of the {precision} matmul peak"),
                 (f"{key}_cut_at_max_len", sum(not h.finished for h in best), f"of {len(best)} sentences")]
    return rows


def memory(device: torch.device) -> list[Row]:
    rows = [("peak_rss_mib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "MiB (process)")]
    if device.type == "cuda":
        rows.append(("cuda_peak_allocated_mib", torch.cuda.max_memory_allocated(device) / 2**20, "MiB"))
    return rows


@contextlib.contextmanager
def recipe(config: Path, overrides: Optional[list[str]], prefix: str) -> Iterator[Config]:
    """The recipe with its overrides, working in a temporary out_dir unless `out_dir=...` is given."""
    cfg = load_config(config, overrides)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        if not any(o.split("=", 1)[0].strip() == "out_dir" for o in overrides or []):
            cfg = dataclasses.replace(cfg, out_dir=tmp)
        yield cfg


def main(
    config: Path = CONFIG,
    overrides: Optional[list[str]] = OVERRIDES,
    steps: int = typer.Option(30, min=1, help="Timed training updates."),
    warmup: int = typer.Option(3, min=0, help="Untimed training updates before them."),
    sentences: int = typer.Option(200, min=0, help="First test sentences decoded per beam size (0: no decoding)."),
    decode_precisions: Optional[str] = typer.Option(
        None, help="Comma-separated decoding precisions, e.g. fp32,bf16,int8 (int8: CPU). Default: the training precision."),
    checkpoint: Optional[Path] = typer.Option(None, help="Decode with this best.pt / last.pt of the same recipe."),
    peak_n: int = typer.Option(2048, min=64, help="Size of the square matmul whose FLOP/s is the MFU's peak."),
    json_out: Optional[Path] = JSON_OUT,
    profile_rows: int = typer.Option(0, "--profile", min=0,
                                     help="Also profile one more training update and one more beam-5 pass per decoding "
                                          "precision; print their N costliest ops."),
) -> None:
    """Print the machine, model size, training and decoding throughput and peak memory of a recipe."""
    with recipe(config, overrides, "nmt_speed-") as cfg:
        if checkpoint is not None:
            model, saved, task = load_model(checkpoint, resolve_device(cfg.train.device))
            if (saved.model, saved.subword) != (cfg.model, cfg.subword):
                raise SeqattnError(f"{checkpoint}: its model or subword section differs from {config}; pass its recipe")
        trainer = Trainer(cfg, log=log)
        if checkpoint is None:
            model, task = trainer.model, trainer.task
        n_params = sum(p.numel() for p in trainer.model.parameters())
        train_precision = precision_name(trainer.amp_dtype)
        precisions = [p.strip() for p in (decode_precisions or train_precision).split(",") if p.strip()] if sentences else []
        peaks = {p: matmul_peak(trainer.device, p, peak_n) for p in dict.fromkeys([train_precision, *precisions])}
        rows = machine(trainer, precisions) + [("parameters", n_params, ""), ("model_mb_fp32", 4 * n_params / 1e6, "MB (fp32)")]
        rows += [(f"{p}_matmul_peak_gflop_per_s", peak / 1e9, f"GFLOP/s ({peak_n}^2 {p} product)") for p, peak in peaks.items()]
        rows.append(("matmul_peak_gflop_per_s", peaks[train_precision] / 1e9, "GFLOP/s (the training precision's)"))
        rows += train_speed(trainer, steps, warmup, peaks[train_precision], profile_rows)
        lines, refs = (side[:sentences] for side in load_split(cfg.data, cfg.data.test))
        if precisions:
            rows += [("decode_sentences", len(lines), "test sentences"),
                     ("decode_batch_size", cfg.search.batch_size, "sentences")]
        for precision in precisions:
            decoder = quantize_int8(model) if precision == "int8" else model
            rows += decode_speed(decoder, task, trainer, lines, refs, peaks[precision], precision, profile_rows)
        rows += memory(trainer.device)
        rows.append(("checkpoint", str(checkpoint) if checkpoint else None, ""))
        if checkpoint is None:
            rows.append(("note", UNTRAINED, ""))
    report(rows, json_out)


if __name__ == "__main__":
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(user_errors(main))
    app()
