"""The seqattn command line: preprocess, train, translate, average, evaluate."""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, Optional

import typer

from seqattn.errors import SeqattnError

app = typer.Typer(
    help="Attention-based sequence-to-sequence learning: train, decode, score and look at alignments.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)

CONFIG = typer.Argument(..., help="YAML recipe, e.g. recipes/bahdanau2015/rnnsearch.yaml.")
OVERRIDES = typer.Argument(None, help="Dotted overrides of the recipe, e.g. train.lr=0.0005 out_dir=runs/x.")


def user_errors(command: Callable) -> Callable:
    """Turn SeqattnError into one line on stderr and exit status 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SeqattnError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def log(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
@user_errors
def preprocess(config: Path = CONFIG, overrides: Optional[list[str]] = OVERRIDES) -> None:
    """Read the corpus, train the sentencepiece model(s) into OUT_DIR and report filtering."""
    from seqattn.config import load_config
    from seqattn.data import prepare

    cfg = load_config(config, overrides)
    prepare(cfg, log=log)
    log(f"subword models written to {cfg.out_dir}")


@app.command()
@user_errors
def train(
    config: Path = CONFIG,
    overrides: Optional[list[str]] = OVERRIDES,
    resume: bool = typer.Option(False, "--resume", help="Continue exactly from OUT_DIR/last.pt."),
) -> None:
    """Train a model; validates every train.valid_every steps and keeps OUT_DIR/best.pt by BLEU."""
    from seqattn.config import load_config
    from seqattn.training import Trainer

    Trainer(load_config(config, overrides), resume=resume, log=log).train()


@app.command()
@user_errors
def translate(
    checkpoint: list[Path] = typer.Option(
        ..., "--checkpoint", "-c",
        help="A best.pt or last.pt written by `seqattn train`; repeat to decode with the ensemble of several "
             "(same subword models; the first one's recipe is used).",
    ),
    input: str = typer.Option("-", "--input", "-i", help="Source text, one sentence a line; - reads stdin."),
    split: Optional[str] = typer.Option(None, help="Translate a split of the recipe's corpus instead (train, valid, test) and score it."),
    output: str = typer.Option("-", "--output", "-o", help="Where translations go; - writes stdout."),
    beam_size: Optional[int] = typer.Option(None, help="Beam width (1 = greedy). Default: the recipe's search.beam_size."),
    nbest: Optional[int] = typer.Option(None, help="Hypotheses per sentence; above 1 lines read `ID ||| text ||| score`."),
    batch_size: Optional[int] = typer.Option(None, help="Sentences decoded together."),
    length_penalty: Optional[str] = typer.Option(None, help="none or gnmt."),
    alpha: Optional[float] = typer.Option(None, help="GNMT length-penalty exponent."),
    min_len: Optional[int] = typer.Option(None, help="Fewest target tokens before EOS is allowed."),
    max_len_a: Optional[float] = typer.Option(None, help="Max target length = a * source length + b."),
    max_len_b: Optional[int] = typer.Option(None, help="See --max-len-a."),
    coverage_penalty: Optional[float] = typer.Option(
        None, help="GNMT coverage-penalty weight beta for ranking beam hypotheses (0 = off; needs attention)."),
    no_repeat_ngram: Optional[int] = typer.Option(None, help="Never repeat an n-gram of this size (0 = off)."),
    sampling: Optional[bool] = typer.Option(
        None, "--sampling/--no-sampling", help="Sample --nbest translations per sentence instead of searching."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature (> 0; below 1 is sharper)."),
    top_k: Optional[int] = typer.Option(None, help="Sample among the k most likely tokens only (0 = all)."),
    top_p: Optional[float] = typer.Option(
        None, help="Nucleus sampling: among the fewest most likely tokens holding mass p (1 = all)."),
    seed: Optional[int] = typer.Option(None, help="Seed of the sampling random generator (default: unseeded)."),
    attention_dir: Optional[Path] = typer.Option(None, help="Write each sentence's attention matrix (JSON) and heatmap (PNG) here."),
    attention_max: int = typer.Option(0, help="With --attention-dir: only the first N sentences (0 = all)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option(
        "fp32", help="fp32, bf16 (autocast, CPU or GPU), fp16 (autocast, GPU) or auto (fp16 on GPU, else fp32)."),
) -> None:
    """Translate text with beam or greedy search or sampling, with one model or an ensemble;
    detokenised output, optional n-best and heatmaps."""
    import dataclasses

    import torch

    from seqattn.data import load_split, read_lines
    from seqattn.evaluation import corpus_scores
    from seqattn.training import autocast_dtype, load_models, resolve_device
    from seqattn.translator import Translator
    from seqattn.visualisation import save_alignment

    dev = resolve_device(device)
    model, cfg, src_tok, tgt_tok = load_models(checkpoint, dev)
    given = dict(beam_size=beam_size, nbest=nbest, batch_size=batch_size, length_penalty=length_penalty,
                 alpha=alpha, min_len=min_len, max_len_a=max_len_a, max_len_b=max_len_b,
                 coverage_penalty=coverage_penalty, no_repeat_ngram=no_repeat_ngram, sampling=sampling,
                 temperature=temperature, top_k=top_k, top_p=top_p)
    search_cfg = dataclasses.replace(cfg.search, **{k: v for k, v in given.items() if v is not None})
    if not search_cfg.sampling and search_cfg.nbest > search_cfg.beam_size:
        raise SeqattnError(f"--nbest {search_cfg.nbest} is larger than --beam-size {search_cfg.beam_size}")
    refs = None
    if split is not None:
        if split not in ("train", "valid", "test"):
            raise SeqattnError(f"--split {split}: choose train, valid or test")
        lines, refs = load_split(cfg.data, getattr(cfg.data, split))
    else:
        lines = sys.stdin.read().splitlines() if input == "-" else read_lines(Path(input))
    generator = None if seed is None else torch.Generator(dev).manual_seed(seed)
    translator = Translator(model, src_tok, tgt_tok, search_cfg, dev, generator, autocast_dtype(precision, dev, "--precision"))
    src_ids = src_tok.encode(lines)
    try:
        results = translator.translate_ids(src_ids)
    except RuntimeError as err:
        if translator.amp_dtype is None:
            raise
        raise SeqattnError(
            f"--precision {precision}: {dev} cannot run this model under autocast ({str(err).splitlines()[0]}); "
            "use --precision fp32"
        ) from None
    out_lines = []
    for i, hyps in enumerate(results):
        if search_cfg.nbest == 1:
            out_lines.append(translator.detokenize(hyps[0]))
        else:
            out_lines.extend(f"{i} ||| {translator.detokenize(h)} ||| {h.score:.4f}" for h in hyps)
    text = "\n".join(out_lines) + "\n"
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
    if refs is not None:
        best = [translator.detokenize(hyps[0]) for hyps in results]
        for score in corpus_scores(best, [refs]):
            log(f"{split}: {score.text}\n  signature: {score.signature}")
    if attention_dir is not None:
        attention_dir.mkdir(parents=True, exist_ok=True)
        for i, hyps in enumerate(results[: attention_max or None]):
            best = hyps[0]
            if best.alpha is None:
                raise SeqattnError(f"--attention-dir: model {cfg.model.arch} has no attention to draw")
            src_pieces = src_tok.pieces(src_ids[i]) + ["</s>"]
            tgt_pieces = tgt_tok.pieces(best.tokens) + (["</s>"] if best.finished else [])
            save_alignment(best.alpha, src_pieces, tgt_pieces, attention_dir / f"{i:05d}")
        log(f"attention of {min(len(results), attention_max or len(results))} sentences written to {attention_dir}")


@app.command()
@user_errors
def average(
    checkpoint: list[Path] = typer.Option(
        ..., "--checkpoint", "-c", help="A checkpoint of the model; repeat for each one to average."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="The averaged checkpoint; the subword models are copied beside it."),
) -> None:
    """Average the parameters of checkpoints of one model into one that `translate -c` loads."""
    from seqattn.training import save_checkpoint
    from seqattn.training.average import average_checkpoints, copy_subword_models

    averaged = average_checkpoints(checkpoint)
    output.parent.mkdir(parents=True, exist_ok=True)
    copy_subword_models(checkpoint[0], averaged["config"], output.parent)
    save_checkpoint(averaged, output)
    log(f"average of {len(checkpoint)} checkpoints written to {output}")


@app.command()
@user_errors
def evaluate(
    hyp: Path = typer.Option(..., "--hyp", help="Detokenised system output, one sentence a line."),
    ref: list[Path] = typer.Option(..., "--ref", help="Reference file; repeat for several references."),
    src: Optional[Path] = typer.Option(None, "--src", help="Source file: adds BLEU by source length (words)."),
) -> None:
    """sacreBLEU BLEU and chrF with their signatures; BLEU by source-length bucket with --src."""
    from seqattn.data import read_lines
    from seqattn.evaluation import bleu_by_length, corpus_scores, format_table

    hyps = read_lines(hyp)
    refs = [read_lines(r) for r in ref]
    for score in corpus_scores(hyps, refs):
        typer.echo(f"{score.text}\n  signature: {score.signature}")
    if src is not None:
        rows = bleu_by_length(read_lines(src), hyps, refs)
        typer.echo(format_table(rows, ["source length", "sentences", "BLEU"]))


if __name__ == "__main__":
    app()
