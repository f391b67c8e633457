"""OpenNMT-py and CTranslate2 on seqattn's Transformer benchmark (Multi30k En->De), same data and model.

    benchmarks/peers/.venv/bin/python benchmarks/peers/onmt_speed.py --warmup 20 --steps 100 --sentences 1000 \
        --threads 2 [--ours seqattn.json ...] [--json peers.json]

1. Encodes Multi30k to pieces with seqattn's joint sentencepiece model (training pairs filtered as
   seqattn does, by max_len and max_ratio of data/multi30k.yaml) and writes the shared vocabulary.
2. Trains OpenNMT-py (transformer.yaml, or rnn.yaml with --model rnn) for --warmup + --steps
   updates of --batch-tokens; target
   tokens/s and sentences/s come from OpenNMT-py's own per-report counts over the steps after the
   warm-up; peak RSS is that of the onmt_train process.
3. Decodes the first --sentences of test2016 with beam 5 (batches of 64, length penalty and length
   cap from the recipe's search section) by onmt_translate, and by CTranslate2 after converting the
   checkpoint (ct2_convert.py, ct2_decode.py; Transformers only), each in its own process.
   --steps 0 skips 2 and 3; with --seqattn-checkpoint, 3 is skipped (OpenNMT-py's own model has had
   only the timed updates, and every tool decodes seqattn's model instead).
4. With --seqattn-checkpoint, converts seqattn's trained Transformer to CTranslate2
   (`seqattn export --to ctranslate2`, run by --seqattn) and, when it is pre-norm, to OpenNMT-py (onmt_from_seqattn.py), and
   decodes the same sentences with them: the peers and seqattn then decode one and the same
   model. Every decoder's output is scored with sacreBLEU.
Prints the machine (its CPU flags for bf16 and the matmul peaks too, with --ours), the versions
and one table, with seqattn's figures when --ours names the JSON files written by
`benchmarks/nmt_speed.py --json` (a column per precision: training figures under the file's
training precision, decoding figures under each of its decoding precisions) and each tool's ratio
to OpenNMT-py. Each figure comes from the tools' own clocks.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import NoReturn

import sacrebleu
import sentencepiece as spm
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BIN = Path(sys.executable).parent  # the peers venv's scripts
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]  # seqattn's ids 0..3; OpenNMT-py adds its own
DATA = yaml.safe_load((REPO / "data/multi30k.yaml").read_text(encoding="utf-8"))  # max_len, max_ratio
SEARCH = yaml.safe_load((REPO / "recipes/vaswani2017/transformer.yaml").read_text(encoding="utf-8"))["search"]
# OpenNMT-py's report line: "Step 40/  120; ...; sents:  1234; bsz: 3563/3012/97; 1510/1276 tok/s; ..."
REPORT = re.compile(r"Step\s+(\d+)/\s*\d+;.*?sents:\s*(\d+); bsz:\s*(\d+)/\s*(\d+)/\s*\d+;\s*(\d+)/\s*(\d+) tok/s")
Row = tuple[str, str, dict[str, object]]  # key, unit, {tool: value}


def fail(message: str) -> NoReturn:
    raise SystemExit(f"onmt_speed: {message}")


def cpu_model() -> str:
    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")]
    return names[0] if names else "unknown"


def cpu_flags(wanted: tuple[str, ...] = ("avx512_bf16", "amx_bf16", "avx512_vnni")) -> str:
    """Which of the CPU flags that bf16 and int8 speed hang on /proc/cpuinfo lists."""
    flags = {flag for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
             for flag in line.split(":", 1)[1].split()}
    return ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in wanted)


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        fail(f"{path}: not found; pass --data (the folder holding Multi30k's train/test files)")
    with path.open(encoding="utf-8", newline="") as f:  # lines split at "\n" only, as seqattn reads them
        return [line.rstrip("\r\n") for line in f]


def write_pieces(path: Path, pieces: list[list[str]]) -> None:
    path.write_text("".join(" ".join(p) + "\n" for p in pieces), encoding="utf-8")


def prepare(work: Path, sp_path: Path, data: Path, sentences: int) -> int:
    """Write train.{en,de}.sp, test.en.sp and vocab.txt into `work` -> the decoding length cap."""
    if not sp_path.is_file():
        fail(f"{sp_path}: sentencepiece model not found; run seqattn on recipes/vaswani2017/transformer.yaml "
             "first or pass --spm")
    sp = spm.SentencePieceProcessor(model_file=str(sp_path))
    if [sp.id_to_piece(i) for i in range(4)] != SPECIALS:
        fail(f"{sp_path}: ids 0..3 are not {' '.join(SPECIALS)}; pass seqattn's spm.model")
    src, tgt = (sp.encode(read_lines(data / f"train.{lang}"), out_type=str) for lang in ("en", "de"))
    max_len, max_ratio = DATA["max_len"], DATA["max_ratio"]
    keep = [i for i, (s, t) in enumerate(zip(src, tgt)) if 0 < len(s) <= max_len and 0 < len(t) <= max_len
            and max(len(s), len(t)) <= max_ratio * min(len(s), len(t))]
    write_pieces(work / "train.en.sp", [src[i] for i in keep])
    write_pieces(work / "train.de.sp", [tgt[i] for i in keep])
    test = sp.encode(read_lines(data / "test_2016_flickr.en")[:sentences], out_type=str)
    write_pieces(work / "test.en.sp", test)
    (work / "vocab.txt").write_text("".join(sp.id_to_piece(i) + "\n" for i in range(4, len(sp))), encoding="utf-8")
    print(f"data: {len(keep)} of {len(src)} training pairs kept, {len(test)} test sentences, "
          f"vocabulary {len(sp)}", flush=True)
    # seqattn caps each output at int(a * (|x| + EOS) + b) tokens, EOS included; the peers take one cap
    return int(SEARCH["max_len_a"] * (max(map(len, test)) + 1) + SEARCH["max_len_b"])


def run(cmd: list[str], work: Path, log: Path, threads: int) -> tuple[float, float]:
    """Run `cmd` in `work` with its output in `log` -> (wall seconds, peak RSS MiB of the process)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")  # OpenNMT-py 3.5.1 checkpoints pickle its options
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        fail(f"{Path(cmd[0]).name} exited with {proc.returncode}; see {log}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def train(work: Path, args: argparse.Namespace) -> tuple[Path, list[Row]]:
    """OpenNMT-py training; throughput over the reports after the warm-up steps."""
    every = math.gcd(args.warmup, args.steps)
    total = args.warmup + args.steps
    cmd = [str(BIN / "onmt_train"), "-config", str(HERE / f"{args.model}.yaml"), "-train_steps", str(total),
           "-batch_size", str(args.batch_tokens), "-report_every", str(every), "-save_model", "model",
           "-save_checkpoint_steps", str(total), "-seed", "1234", "-overwrite"]
    seconds, rss = run(cmd, work, work / "train.log", args.threads)
    tokens = sents = elapsed = 0.0
    for match in REPORT.finditer((work / "train.log").read_text(encoding="utf-8")):
        step, n_sents, _, tgt_per_batch, _, tgt_per_s = map(int, match.groups())
        if step > args.warmup:  # each report covers the `every` steps before it
            tokens += tgt_per_batch * every
            sents += n_sents
            elapsed += tgt_per_batch * every / tgt_per_s
    if not elapsed:
        fail(f"no training report after step {args.warmup} in {work / 'train.log'}")
    params = re.search(r"number of parameters: (\d+)", (work / "train.log").read_text(encoding="utf-8"))
    rows = [("parameters", "", {"onmt": int(params.group(1)) if params else None}),
            ("train_batch_tokens", "tokens per batch: sentences x max(src, tgt+2) padded", {"onmt": args.batch_tokens}),
            ("train_steps", f"updates timed after {args.warmup} warm-up", {"onmt": args.steps}),
            ("train_ms_per_step", "ms", {"onmt": 1000 * elapsed / args.steps}),
            ("train_tgt_tokens_per_s", "target tokens/s, EOS in, padding out", {"onmt": tokens / elapsed}),
            ("train_sentences_per_s", "sentences/s", {"onmt": sents / elapsed}),
            ("train_process_s", "s, onmt_train start to exit", {"onmt": seconds}),
            ("train_peak_rss_mib", "MiB, training process", {"onmt": rss})]
    return work / f"model_step_{total}.pt", rows


def output_stats(hyp: Path, max_len: int) -> tuple[int, int]:
    """(output tokens with an EOS for each finished sentence, sentences cut at the cap)."""
    lengths = [len(line.split()) for line in hyp.read_text(encoding="utf-8").splitlines()]
    cut = sum(n >= max_len - 1 for n in lengths)  # the cap counts EOS; a cut output has no EOS
    return sum(lengths) + len(lengths) - cut, cut


def bleu(hyp: Path, sp_path: Path, data: Path) -> float:
    """sacreBLEU (13a, mixed case) of detokenised pieces against the test2016 German references."""
    sp = spm.SentencePieceProcessor(model_file=str(sp_path))
    hyps = [sp.decode(line.split()) for line in hyp.read_text(encoding="utf-8").splitlines()]
    refs = read_lines(data / "test_2016_flickr.de")[: len(hyps)]
    return sacrebleu.corpus_bleu(hyps, [refs]).score


def decode_rows(tool: str, sentences: int, seconds: float, hyp: Path, max_len: int, rss: float,
                args: argparse.Namespace) -> list[Row]:
    tokens, cut = output_stats(hyp, max_len)
    return [("beam5_bleu", f"sacreBLEU of the first {sentences} test2016 sentences", {tool: bleu(hyp, args.spm, args.data)}),
            ("beam5_sentences_per_s", "sentences/s", {tool: sentences / seconds}),
            ("beam5_tgt_tokens_per_s", "output tokens/s, EOS in", {tool: tokens / seconds}),
            ("beam5_cut_at_max_len", f"sentences at the cap of {max_len} tokens", {tool: cut}),
            ("beam5_mean_output_len", "tokens/sentence, EOS in", {tool: tokens / sentences}),
            ("decode_peak_rss_mib", "MiB, decoding process", {tool: rss})]


def decode_onmt(work: Path, model: Path, args: argparse.Namespace, max_len: int, tool: str = "onmt") -> list[Row]:
    """onmt_translate on OpenNMT-py's `model`, or for tool "onmt_seqattn" on seqattn's pre-norm
    Transformer converted by onmt_from_seqattn.py, its sources ending with seqattn's </s>."""
    src = "test.en.sp"
    if tool == "onmt_seqattn":
        run([sys.executable, str(HERE / "onmt_from_seqattn.py"), str(model.resolve()), f"{tool}.pt"], work,
            work / f"convert_{tool}.log", args.threads)
        model, src = work / f"{tool}.pt", "test.en.eos.sp"
        lines = (work / "test.en.sp").read_text(encoding="utf-8").splitlines()
        (work / src).write_text("".join(f"{line} </s>\n" for line in lines), encoding="utf-8")
    cmd = [str(BIN / "onmt_translate"), "-model", str(model), "-src", src, "-output", f"{tool}.hyp",
           "-beam_size", "5", "-batch_size", str(SEARCH["batch_size"]), "-batch_type", "sents", "-max_length", str(max_len - 1),
           "-max_length_ratio", "0", "-length_penalty", "wu", "-alpha", str(SEARCH["alpha"]), "-report_time", "-gpu", "-1"]
    log = work / f"translate_{tool}.log"
    _, rss = run(cmd, work, log, args.threads)
    found = re.search(r"Average translation time \(ms\): ([\d.]+)", log.read_text(encoding="utf-8"))
    if not found:
        fail(f"no 'Average translation time' in {log}")
    n = len((work / src).read_text(encoding="utf-8").splitlines())
    return decode_rows(tool, n, n * float(found.group(1)) / 1000, work / f"{tool}.hyp", max_len, rss, args)


def decode_ct2(work: Path, model: Path, args: argparse.Namespace, max_len: int, tool: str = "ct2") -> list[Row]:
    """Convert `model` (OpenNMT-py's by ct2_convert.py, or seqattn's by `seqattn export` for tool
    "ct2_seqattn") and decode with CTranslate2 in float32, and with `--ct2-int8` again with int8
    weights (column `tool`_int8)."""
    if tool == "ct2_seqattn":
        shutil.rmtree(work / tool, ignore_errors=True)  # a scratch folder: export writes a new one
        convert = [str(args.seqattn.absolute()), "export", "-c", str(model.resolve()), "--to", "ctranslate2", tool]
    else:
        convert = [sys.executable, str(HERE / "ct2_convert.py"), str(model.resolve()), tool]
    run(convert, work, work / f"convert_{tool}.log", args.threads)
    rows = []
    for compute_type in ["float32"] + (["int8"] if args.ct2_int8 else []):
        name = tool if compute_type == "float32" else f"{tool}_{compute_type}"
        cmd = [sys.executable, str(HERE / "ct2_decode.py"), tool, "test.en.sp", f"{name}.hyp", "--threads", str(args.threads),
               "--beam", "5", "--batch", str(SEARCH["batch_size"]), "--max-len", str(max_len - 1),
               "--length-penalty", str(SEARCH["alpha"]), "--compute-type", compute_type]
        _, rss = run(cmd, work, work / f"{name}.log", args.threads)
        result = json.loads((work / f"{name}.log").read_text(encoding="utf-8").splitlines()[-1])
        rows += decode_rows(name, result["sentences"], result["seconds"], work / f"{name}.hyp", max_len, rss, args)
    return rows


def prenorm(checkpoint: Path) -> bool:
    """Whether the run beside `checkpoint` (its config.yaml) trained a pre-norm Transformer."""
    config = checkpoint.parent / "config.yaml"
    if not config.is_file():
        fail(f"{config}: not found; --seqattn-checkpoint must lie in its run folder")
    return yaml.safe_load(config.read_text(encoding="utf-8"))["model"]["norm"] == "pre"


def merge(rows: list[Row]) -> dict[str, tuple[str, dict[str, object]]]:
    table: dict[str, tuple[str, dict[str, object]]] = {}
    for key, unit, values in rows:
        known_unit, merged = table.get(key, ("", {}))
        table[key] = (known_unit or unit, {**merged, **values})  # the first row with a unit gives it
    return table


MFU = "% of the matmul peak in the column's precision (seqattn's FLOP count)"
PRECISION_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}  # nmt_speed's train_precision


def read_ours(paths: list[Path]) -> list[dict[str, object]]:
    for path in paths:
        if not path.is_file():
            fail(f"--ours {path}: not found; write it with benchmarks/nmt_speed.py ... --json {path}")
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def ours(runs: list[dict[str, object]]) -> list[Row]:
    """seqattn's figures from `nmt_speed.py --json` files under the peers' keys, in columns
    seqattn_<precision>: each file's training figures (its RSS covers the whole run) under its
    training precision, when it timed training (--steps), and its decoding figures under each of its
    decoding precisions (--decode-precisions)."""
    rows: list[Row] = []
    train_keys = ["parameters", "train_batch_tokens", "train_steps", "train_ms_per_step", "train_tgt_tokens_per_s",
                  "train_sentences_per_s", "train_mfu"]
    decode_keys = ["bleu", "sentences_per_s", "tgt_tokens_per_s", "cut_at_max_len", "mfu"]
    for figures in runs:
        column = f"seqattn_{PRECISION_NAMES[str(figures['train_precision'])]}"
        rows += [(k, MFU if k == "train_mfu" else "", {column: figures[k]}) for k in train_keys if k in figures]
        rows.append(("train_peak_rss_mib", "", {column: figures.get("peak_rss_mib")}))
        for precision in filter(None, str(figures.get("decode_precisions", "")).split(",")):
            rows += [(f"beam5_{k}", MFU if k == "mfu" else "", {f"seqattn_{precision}": figures[f"{precision}_beam5_{k}"]})
                     for k in decode_keys]
    return rows


def peer_mfu(table: dict[str, tuple[str, dict[str, object]]], runs: list[dict[str, object]], model: str) -> None:
    """OpenNMT-py's MFU from its target tokens/s and seqattn's FLOPs per target token and fp32 matmul
    peak (the same model and data; FLOPs counted by torch in seqattn's training step), from a
    seqattn run that trained in fp32 (OpenNMT-py trains in fp32)."""
    fp32 = [f for f in runs if f.get("train_precision") == "float32" and "train_mflop_per_tgt_token" in f]
    onmt = table.get("train_tgt_tokens_per_s", ("", {}))[1].get("onmt")
    if not fp32 or onmt is None or model != "transformer":  # other models: other FLOPs
        return
    flops = float(fp32[0]["train_mflop_per_tgt_token"]) * 1e6 * float(onmt)
    table.setdefault("train_mfu", (MFU, {}))[1]["onmt"] = 100 * flops / (float(fp32[0]["matmul_peak_gflop_per_s"]) * 1e9)


def ratios(table: dict[str, tuple[str, dict[str, object]]]) -> None:
    """Each tool's training tokens/s and beam-5 sentences/s over OpenNMT-py's: decoding against
    OpenNMT-py decoding seqattn's model (ONMT(seqattn)) when it ran, else its own model."""
    for key, ratio_key, references in (("train_tgt_tokens_per_s", "train_x_onmt", ("onmt",)),
                                       ("beam5_sentences_per_s", "beam5_x_onmt", ("onmt_seqattn", "onmt"))):
        values = table.get(key, ("", {}))[1]
        reference = next((values[r] for r in references if values.get(r)), None)
        if reference is not None:
            table[ratio_key] = (f"{key} / OpenNMT-py's", {t: float(v) / float(reference) for t, v in values.items()
                                                          if isinstance(v, (int, float))})


def show(value: object) -> str:
    return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100,
                        help="Timed training updates after the warm-up; 0 skips OpenNMT-py (training and decoding).")
    parser.add_argument("--warmup", type=int, default=20, help="Untimed updates first; reports come every gcd(warmup, steps).")
    parser.add_argument("--sentences", type=int, default=1000, help="First test2016 sentences decoded.")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch and CTranslate2.")
    parser.add_argument("--batch-tokens", type=int, default=4096, help="OpenNMT-py batch_size in tokens.")
    parser.add_argument("--spm", type=Path, default=REPO / "runs/vaswani2017/transformer/spm.model",
                        help="seqattn's joint sentencepiece model.")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("SEQATTN_DATA_ROOT") or REPO.parent / "shared/data") / "multi30k",
                        help="Multi30k folder (train.*, test_2016_flickr.*).")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="Scratch folder (data, logs, checkpoints).")
    parser.add_argument("--ours", type=Path, action="append", default=[],
                        help="JSON from benchmarks/nmt_speed.py --json, shown beside the peers; repeat for several runs.")
    parser.add_argument("--json", type=Path, help="Also write the table to this JSON file.")
    parser.add_argument("--model", choices=["transformer", "rnn"], default="transformer",
                        help="OpenNMT-py's model: transformer.yaml (3+3 layers) or rnn.yaml (1-layer biGRU + attention).")
    parser.add_argument("--seqattn-checkpoint", type=Path,
                        help="seqattn's trained Transformer (best.pt, spm.model and config.yaml beside it): also decoded "
                             "by CTranslate2, and by OpenNMT-py when it is pre-norm.")
    parser.add_argument("--seqattn", type=Path, default=REPO / ".venv/bin/seqattn",
                        help="seqattn's command (its venv has the export extra): converts --seqattn-checkpoint to CTranslate2.")
    parser.add_argument("--ct2-int8", action="store_true",
                        help="Also decode with CTranslate2's int8 weights (its fastest CPU compute type).")
    args = parser.parse_args()
    if min(args.sentences, args.threads, args.batch_tokens) < 1 or min(args.warmup, args.steps) < 0:
        fail("--sentences, --threads and --batch-tokens must be >= 1, --warmup and --steps >= 0")
    if args.seqattn_checkpoint is not None and not args.seqattn_checkpoint.is_file():
        fail(f"--seqattn-checkpoint {args.seqattn_checkpoint}: not found")

    args.work = args.work.resolve()  # the tools run inside it, so its paths must not be relative
    args.work.mkdir(parents=True, exist_ok=True)
    runs = read_ours(args.ours)
    max_len = prepare(args.work, args.spm, args.data, args.sentences)
    rows = ours(runs)
    if args.steps:
        model, trained = train(args.work, args)
        print(f"trained: {model}", flush=True)
        rows += trained
        if args.seqattn_checkpoint is None:  # else every tool decodes that model: this one has had only the timed updates
            rows += decode_onmt(args.work, model, args, max_len)
            if args.model == "transformer":  # CTranslate2 converts Transformers, not RNNs
                rows += decode_ct2(args.work, model, args, max_len)
    if args.seqattn_checkpoint is not None:
        rows += decode_ct2(args.work, args.seqattn_checkpoint, args, max_len, tool="ct2_seqattn")
        if prenorm(args.seqattn_checkpoint):  # OpenNMT-py's Transformer is pre-norm only
            rows += decode_onmt(args.work, args.seqattn_checkpoint, args, max_len, tool="onmt_seqattn")

    machine = [("cpu", cpu_model()), ("cpu_flags", cpu_flags()), ("logical_cores", os.cpu_count()),
               ("threads", args.threads), ("python", sys.version.split()[0])]
    peaks = {key: f"{value:.1f} GFLOP/s" for run in runs for key, value in run.items() if key.endswith("_matmul_peak_gflop_per_s")}
    machine += [(key.removesuffix("_gflop_per_s"), value) for key, value in peaks.items()]
    machine += [(name, version(name)) for name in ("torch", "OpenNMT-py", "ctranslate2", "sentencepiece")]
    for key, value in machine:
        print(f"{key:<24} {value}")
    table = merge(rows)
    peer_mfu(table, runs, args.model)
    ratios(table)
    names = {"seqattn_fp32": "seqattn-fp32", "seqattn_bf16": "seqattn-bf16", "seqattn_int8": "seqattn-int8",
             "onmt": "OpenNMT-py", "ct2": "CTranslate2", "ct2_int8": "CTranslate2-int8",
             "ct2_seqattn": "CT2(seqattn)", "ct2_seqattn_int8": "CT2-int8(seqattn)", "onmt_seqattn": "ONMT(seqattn)"}
    tools = [t for t in names if any(t in v for _, v in table.values())]
    print(f"\n{'':<24}" + "".join(f"{names[t]:>19}" for t in tools) + "  unit")
    for key, (unit, values) in table.items():
        print(f"{key:<24}" + "".join(f"{show(values.get(t)):>19}" for t in tools) + f"  {unit}")
    if args.json is not None:
        out = {"machine": dict(machine), "figures": {k: {"unit": u, **v} for k, (u, v) in table.items()}}
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
