"""The seqattn command line: preprocess, train, translate, caption, average, evaluate."""
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
RESUME = typer.Option(False, "--resume", help="Continue exactly from OUT_DIR/last.pt.")

# search options `translate` and `caption` share; None keeps the recipe's search section
BEAM_SIZE = typer.Option(None, help="Beam width (1 = greedy). Default: the recipe's search.beam_size.")
NBEST = typer.Option(None, help="Hypotheses per input; above 1 translate writes `ID ||| text ||| score` lines.")
BATCH_SIZE = typer.Option(None, help="Inputs decoded together.")
LENGTH_PENALTY = typer.Option(None, help="none or gnmt.")
ALPHA = typer.Option(None, help="GNMT length-penalty exponent.")
MIN_LEN = typer.Option(None, help="Fewest output tokens before EOS is allowed.")
MAX_LEN_B = typer.Option(None, help="Max output length = a * source length + b (captions: a = 0).")
NO_REPEAT_NGRAM = typer.Option(None, help="Never repeat an n-gram of this size (0 = off).")
SAMPLING = typer.Option(None, "--sampling/--no-sampling", help="Sample --nbest outputs per input instead of searching.")
TEMPERATURE = typer.Option(None, help="Sampling temperature (> 0; below 1 is sharper).")
TOP_K = typer.Option(None, help="Sample among the k most likely tokens only (0 = all).")
TOP_P = typer.Option(None, help="Nucleus sampling: among the fewest most likely tokens holding mass p (1 = all).")
SEED = typer.Option(None, help="Seed of the sampling random generator (default: unseeded).")
DEVICE = typer.Option("auto", help="auto, cpu, cuda or cuda:N.")
PRECISION = typer.Option(
    "fp32", help="fp32, bf16 (autocast, CPU or GPU), fp16 (autocast, GPU), auto (fp16 on GPU, else fp32) "
                 "or int8 (CPU: int8 weights of the linear and recurrent layers, quantised when loaded).")


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


def load_for_decoding(checkpoints: list[Path], device: str, precision: str):
    """seqattn.api.Model of the checkpoint(s) on --device at --precision."""
    from seqattn.api import Model
    from seqattn.training import resolve_device

    return Model.from_checkpoints(checkpoints, resolve_device(device), precision, "--precision")


def read_input(path: Path) -> list[str]:
    """The lines of an input file given on the command line; - reads stdin."""
    from seqattn.data import read_lines

    return sys.stdin.read().splitlines() if str(path) == "-" else read_lines(Path(path))


def write_outputs(results: list, nbest: int, output: str) -> None:
    """The best output per input a line, or with nbest > 1 `ID ||| text ||| score` lines, to a file or
    stdout (-); results are seqattn.api.Prediction lists."""
    lines = [predictions[0].text for predictions in results] if nbest == 1 else [
        f"{i} ||| {p.text} ||| {p.score:.4f}" for i, predictions in enumerate(results) for p in predictions]
    out = "".join(line + "\n" for line in lines)
    if output == "-":
        sys.stdout.write(out)
    else:
        Path(output).write_text(out, encoding="utf-8")


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
    resume: bool = RESUME,
) -> None:
    """Train a recipe's model on its task (translation, captioning, question answering, classification); validates every
    train.valid_every steps (0: every epoch) and keeps OUT_DIR/best.pt by the task's metric."""
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
    beam_size: Optional[int] = BEAM_SIZE,
    nbest: Optional[int] = NBEST,
    batch_size: Optional[int] = BATCH_SIZE,
    length_penalty: Optional[str] = LENGTH_PENALTY,
    alpha: Optional[float] = ALPHA,
    min_len: Optional[int] = MIN_LEN,
    max_len_a: Optional[float] = typer.Option(None, help="Max target length = a * source length + b."),
    max_len_b: Optional[int] = MAX_LEN_B,
    coverage_penalty: Optional[float] = typer.Option(
        None, help="GNMT coverage-penalty weight beta for ranking beam hypotheses (0 = off; needs attention)."),
    no_repeat_ngram: Optional[int] = NO_REPEAT_NGRAM,
    sampling: Optional[bool] = SAMPLING,
    temperature: Optional[float] = TEMPERATURE,
    top_k: Optional[int] = TOP_K,
    top_p: Optional[float] = TOP_P,
    seed: Optional[int] = SEED,
    attention_dir: Optional[Path] = typer.Option(None, help="Write each sentence's attention matrix (JSON) and heatmap (PNG) here."),
    attention_max: int = typer.Option(0, help="With --attention-dir: only the first N sentences (0 = all)."),
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Translate text with beam or greedy search or sampling, with one model or an ensemble;
    detokenised output, optional n-best and heatmaps."""
    from seqattn.allocator import cache_few_kernels
    from seqattn.api import search_options
    from seqattn.data import load_split
    from seqattn.evaluation import corpus_scores

    cache_few_kernels()  # search's shapes change at every step: keep few of oneDNN's kernels
    model = load_for_decoding(checkpoint, device, precision)
    cfg = model.cfg
    model.expect("translation")  # before the input is read
    search = dict(beam_size=beam_size, nbest=nbest, batch_size=batch_size, length_penalty=length_penalty, alpha=alpha,
                  min_len=min_len, max_len_a=max_len_a, max_len_b=max_len_b, coverage_penalty=coverage_penalty,
                  no_repeat_ngram=no_repeat_ngram, sampling=sampling, temperature=temperature, top_k=top_k, top_p=top_p)
    search_options(cfg.search, **search)  # bad options stop before the input is read
    refs = None
    if split is not None:
        if split not in ("train", "valid", "test"):
            raise SeqattnError(f"--split {split}: choose train, valid or test")
        lines, refs = load_split(cfg.data, getattr(cfg.data, split))
    else:
        lines = read_input(Path(input))
    results = model.translate(lines, seed, **search)
    write_outputs(results, nbest or cfg.search.nbest, output)
    if refs is not None:
        best = [predictions[0].text for predictions in results]
        for score in corpus_scores(best, [refs]):
            log(f"{split}: {score.text}\n  signature: {score.signature}")
    if attention_dir is not None:
        from seqattn.visualisation import save_alignment  # matplotlib only when pictures are asked for

        attention_dir.mkdir(parents=True, exist_ok=True)
        drawn = [i for i in range(len(results))[: attention_max or None]
                 if results[i][0].source != ["</s>"]]  # an empty line: nothing decoded, nothing to draw
        for i in drawn:
            best = results[i][0]
            if best.alpha is None:
                raise SeqattnError(f"--attention-dir: model {cfg.model.arch} has no attention to draw")
            save_alignment(best.alpha, best.source, best.target, attention_dir / f"{i:05d}")
        log(f"attention of {len(drawn)} sentences written to {attention_dir}")


@app.command()
@user_errors
def caption(
    images: Path = typer.Argument(..., help="An image, a folder of images, or a .txt list of image paths."),
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="A best.pt or last.pt of a captioning recipe."),
    output: str = typer.Option("-", "--output", "-o", help="Captions as JSONL, {image, caption, score} a line; - writes stdout."),
    coco: Optional[Path] = typer.Option(None, help="Also write the captions as COCO results JSON [{image_id, caption}]."),
    beam_size: Optional[int] = BEAM_SIZE,
    nbest: Optional[int] = NBEST,
    batch_size: Optional[int] = BATCH_SIZE,
    length_penalty: Optional[str] = LENGTH_PENALTY,
    alpha: Optional[float] = ALPHA,
    min_len: Optional[int] = MIN_LEN,
    max_len_b: Optional[int] = MAX_LEN_B,
    no_repeat_ngram: Optional[int] = NO_REPEAT_NGRAM,
    sampling: Optional[bool] = SAMPLING,
    temperature: Optional[float] = TEMPERATURE,
    top_k: Optional[int] = TOP_K,
    top_p: Optional[float] = TOP_P,
    seed: Optional[int] = SEED,
    attention_dir: Optional[Path] = typer.Option(
        None, help="Write per image a figure of each word's attention over the image (PNG) and the weights (JSON)."),
    attention_max: int = typer.Option(0, help="With --attention-dir: only the first N images (0 = all)."),
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Caption images with the shared search (beam, greedy, n-best, sampling); attention figures on request."""
    import json

    from seqattn.data import eval_crop, list_images, load_image
    from seqattn.evaluation.captions import image_id
    from seqattn.visualisation import save_caption_attention

    model = load_for_decoding([checkpoint], device, precision)
    cfg = model.cfg
    model.expect("captioning")  # before the images are listed
    paths = list_images(images)
    results = model.caption(
        paths, seed, beam_size=beam_size, nbest=nbest, batch_size=batch_size, length_penalty=length_penalty,
        alpha=alpha, min_len=min_len, max_len_b=max_len_b, no_repeat_ngram=no_repeat_ngram, sampling=sampling,
        temperature=temperature, top_k=top_k, top_p=top_p)
    rows = []
    for path, predictions in zip(paths, results):
        row = {"image": str(path), "caption": predictions[0].text, "score": predictions[0].score}
        if (nbest or cfg.search.nbest) > 1:
            row["nbest"] = [{"caption": p.text, "score": p.score} for p in predictions]
        rows.append(row)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
    if coco is not None:
        results_json = [{"image_id": image_id(r["image"]), "caption": r["caption"]} for r in rows]
        coco.write_text(json.dumps(results_json, ensure_ascii=False), encoding="utf-8")
    if attention_dir is not None:
        seen = eval_crop(cfg.backbone.image_size)
        for path, predictions in list(zip(paths, results))[: attention_max or None]:
            best = predictions[0]
            save_caption_attention(seen(load_image(path)), best.target, best.alpha, attention_dir / path.stem)
        log(f"attention figures of {min(len(paths), attention_max or len(paths))} images written to {attention_dir}")


@app.command()
@user_errors
def answer(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="A best.pt or last.pt of a memory-network recipe."),
    input: Optional[list[Path]] = typer.Option(
        None, "--input", "-i", help="bAbI-format file(s) of stories and questions (answers optional); repeat for "
                                   "several; - reads a story from stdin. Default: stdin."),
    split: Optional[str] = typer.Option(
        None, help="Answer a split of the recipe's bAbI tasks instead (train, valid, test) and report accuracy "
                   "and supporting-fact hits per task."),
    output: str = typer.Option("-", "--output", "-o", help="Answers, one a line (comma-joined words); - writes stdout."),
    beam_size: Optional[int] = BEAM_SIZE,
    nbest: Optional[int] = NBEST,
    batch_size: Optional[int] = BATCH_SIZE,
    max_len_b: Optional[int] = typer.Option(None, help="Most answer words (EOS included)."),
    attention_dir: Optional[Path] = typer.Option(
        None, help="Write per question the attention of every hop over the story (PNG + JSON), supporting facts marked."),
    attention_max: int = typer.Option(0, help="With --attention-dir: only the first N questions (0 = all)."),
    scores: Optional[Path] = typer.Option(
        None, help="Also write accuracy and supporting-fact hit rate per task as JSON (answers known)."),
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Answer bAbI questions with a memory network through the shared search; accuracy per task where
    the answers are known."""
    import json

    from seqattn.api import search_options
    from seqattn.data.babi import babi_task_number, load_babi, parse_babi
    from seqattn.evaluation import format_table
    from seqattn.evaluation.qa import accuracy_by_task, support_hit_rate

    model = load_for_decoding([checkpoint], device, precision)
    cfg = model.cfg
    model.expect("qa")  # before the stories are read
    search = dict(beam_size=beam_size, nbest=nbest, batch_size=batch_size, max_len_b=max_len_b)
    search_options(cfg.search, **search)
    if split is not None:
        if split not in ("train", "valid", "test"):
            raise SeqattnError(f"--split {split}: choose train, valid or test")
        examples = load_babi(cfg.babi, log)[split]
    else:
        examples = []
        for path in input or [Path("-")]:
            lines = read_input(path)
            examples += parse_babi(lines, str(path), babi_task_number(path), cfg.babi.memory_size, answered=False)
    results = model.answer(examples, **search)
    write_outputs(results, nbest or cfg.search.nbest, output)
    answered = [i for i, ex in enumerate(examples) if ex.answer]
    hop_batch = batch_size or cfg.search.batch_size
    hops = model.task.hop_attention(model.model, examples, model.device, hop_batch) if answered or attention_dir else []
    if answered:
        known = [examples[i] for i in answered]
        accuracy = accuracy_by_task(known, [results[i][0].text for i in answered])
        hits = support_hit_rate(known, [hops[i] for i in answered])
        K = len(hops[0])
        rows = [(str(t), sum(ex.task == t for ex in known), f"{a:.1f}", f"{100 - a:.1f}",
                 *(f"{h:.1f}" for h in hits.get(t, [float("nan")] * K))) for t, a in accuracy.items()]
        typer.echo(format_table(rows, ["task", "questions", "accuracy", "error", *(f"hop {k + 1} on a fact" for k in range(K))]))
        if scores is not None:
            scores.write_text(json.dumps({"accuracy": accuracy, "support_hits": hits}, indent=1) + "\n", encoding="utf-8")
    if attention_dir is not None:
        from seqattn.visualisation import save_hop_attention

        for i, (ex, p) in enumerate(list(zip(examples, hops))[: attention_max or None]):
            save_hop_attention(p, [" ".join(s) for s in ex.memory], " ".join(ex.question) + "?",
                               results[i][0].text, ex.support, attention_dir / f"{i:05d}")
        log(f"attention of {min(len(examples), attention_max or len(examples))} questions written to {attention_dir}")


@app.command()
@user_errors
def serve(
    checkpoint: list[Path] = typer.Option(
        ..., "--checkpoint", "-c", help="A best.pt or last.pt to offer in the page; repeat for several (any task).",
    ),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 opens the page to the network)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    max_chars: int = typer.Option(1000, help="Longest sentence or story accepted, in characters."),
    queue: int = typer.Option(4, help="Requests that may wait per model while it decodes; more get 503 busy."),
    device: str = DEVICE,
) -> None:
    """An attention explorer in the browser: translate, caption or answer, n-best lists, attention heatmaps,
    two models side by side; with the JSON API behind it."""
    try:
        import uvicorn

        from seqattn.serve import create_app, load_served
    except ImportError as err:
        raise SeqattnError(f"serve needs fastapi and uvicorn ({err}); pip install 'seqattn[serve]'") from None
    from seqattn.allocator import cache_few_kernels
    from seqattn.training import resolve_device

    cache_few_kernels()
    served = load_served(checkpoint, resolve_device(device), queue)
    log(f"serving {', '.join(served)} at http://{host}:{port}/ (Ctrl-C stops)")
    uvicorn.run(create_app(served, max_chars), host=host, port=port, log_level="warning")


@app.command("nn-baseline")
@user_errors
def nn_baseline(
    config: Path = CONFIG,
    overrides: Optional[list[str]] = OVERRIDES,
    output: Path = typer.Option(..., "--output", "-o", help="Captions of the valid images as JSONL (as `caption` writes)."),
) -> None:
    """The nearest-neighbour baseline of a captioning recipe: each valid image gets the consensus caption
    of the training image with the most similar (cached) encoder features."""
    import json

    from seqattn.config import load_config
    from seqattn.evaluation.nearest_neighbour import nearest_neighbour_captions
    from seqattn.tasks.captioning import CaptioningTask

    task = CaptioningTask.prepare(load_config(config, overrides), log=log)
    train, valid = task.train_data, task.valid_data
    if train.grids is None:
        raise SeqattnError("nn-baseline: needs a frozen backbone's cached features; set backbone.freeze=true")
    captions = nearest_neighbour_captions(train.grids, train.split.captions, valid.grids)
    output.write_text("".join(json.dumps({"image": str(path), "caption": c}, ensure_ascii=False) + "\n"
                              for path, c in zip(valid.split.images, captions)), encoding="utf-8")
    log(f"nearest-neighbour captions of {len(captions)} valid images written to {output}")


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
def export(
    output: Path = typer.Argument(..., help="The folder to write; it must not exist yet."),
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", "-c", help="A Transformer's best.pt or last.pt, its subword model(s) beside it."),
    to: str = typer.Option(
        ..., "--to", help="ctranslate2: a CTranslate2 model folder; onnx: encoder.onnx and decoder_step.onnx."),
) -> None:
    """Export a trained Transformer for serving (CTranslate2 or ONNX), with its sentencepiece model(s)."""
    from seqattn.export import export as export_model

    export_model(checkpoint, to, output)
    log(f"{checkpoint} exported to {output} ({to})")


@app.command()
@user_errors
def evaluate(
    hyp: Path = typer.Option(
        ..., "--hyp", help="Detokenised system output, one sentence a line; with --captions the JSONL of "
                           "`seqattn caption` or a COCO results JSON."),
    ref: Optional[list[Path]] = typer.Option(None, "--ref", help="Reference file; repeat for several references."),
    src: Optional[Path] = typer.Option(None, "--src", help="Source file: adds BLEU by source length (words)."),
    captions: Optional[Path] = typer.Option(
        None, help="A captioning recipe: score --hyp against the references of its --split with BLEU-1..4, "
                   "METEOR, ROUGE-L and CIDEr (pycocoevalcap)."),
    split: str = typer.Option("valid", help="With --captions: the split whose references are used (train, valid, test)."),
    babi: Optional[list[Path]] = typer.Option(
        None, help="bAbI file(s) whose questions --hyp answers, one answer a line in their order (as `seqattn answer` "
                   "writes): exact-match accuracy per task."),
    alignments: Optional[Path] = typer.Option(
        None, help="Gold word alignments: score --hyp (Pharaoh `i-j` links, one sentence a line) with AER, "
                   "precision and recall; --src and --ref (tokenised text) check every link is inside its sentence."),
    alignment_format: str = typer.Option("talp", help="Gold format: talp (`i-j` sure, `ipj`/`i?j` possible) or wpt "
                                                      "(`sentence i j [S|P]`)."),
    gold_base: int = typer.Option(1, help="Index base of the gold links (0 or 1)."),
    hyp_base: int = typer.Option(0, help="Index base of the hypothesis links (0 or 1)."),
    reverse_gold: bool = typer.Option(False, help="Swap the gold links' i and j (gold written target first)."),
    reverse_hyp: bool = typer.Option(False, help="Swap the hypothesis links' i and j."),
    encoding: str = typer.Option("utf-8", help="Encoding of the alignment and text files (the RWTH files: latin-1)."),
    skip_gold: int = typer.Option(
        0, help="Score --hyp against the gold sentences after the first N (and --src, --ref lines after the first N): "
                "the N that `seqattn align --layer auto --held-out N` chose its layer on and wrote no links for."),
) -> None:
    """sacreBLEU BLEU and chrF with their signatures (BLEU by source length with --src); caption metrics;
    question-answering accuracy per bAbI task; or the alignment error rate of word alignments."""
    from seqattn.data import read_lines
    from seqattn.evaluation import bleu_by_length, corpus_scores, format_table

    if captions is not None:
        return evaluate_captions(hyp, captions, split)
    if babi:
        return evaluate_answers(hyp, babi)
    if alignments is not None:
        return evaluate_alignments(hyp, alignments, alignment_format, gold_base, hyp_base, reverse_gold, reverse_hyp,
                                   encoding, src, ref[0] if ref else None, skip_gold)
    if not ref:
        raise SeqattnError("--ref: give the reference file(s) of the translations (or --captions RECIPE for captions)")
    hyps = read_lines(hyp)
    refs = [read_lines(r) for r in ref]
    for score in corpus_scores(hyps, refs):
        typer.echo(f"{score.text}\n  signature: {score.signature}")
    if src is not None:
        rows = bleu_by_length(read_lines(src), hyps, refs)
        typer.echo(format_table(rows, ["source length", "sentences", "BLEU"]))


def evaluate_alignments(
    hyp: Path, gold_path: Path, fmt: str, gold_base: int, hyp_base: int, reverse_gold: bool, reverse_hyp: bool,
    encoding: str, src: Optional[Path], tgt: Optional[Path], skip: int,
) -> None:
    """AER, precision and recall of `hyp` against the gold alignments after their first `skip` sentences
    (Och & Ney 2003)."""
    from seqattn.data.alignments import read_hypothesis, read_lines
    from seqattn.evaluation.alignment import alignment_error_rate, check_lengths, read_gold

    for name, base in (("--gold-base", gold_base), ("--hyp-base", hyp_base)):
        if base not in (0, 1):
            raise SeqattnError(f"{name} {base}: indices are 0-based or 1-based")
    gold = read_gold(gold_path, fmt, gold_base, reverse_gold, encoding)
    if not 0 <= skip <= len(gold):
        raise SeqattnError(f"--skip-gold {skip}: {gold_path} has {len(gold)} sentences; skip 0 to {len(gold)} of them")
    links = read_hypothesis(hyp, hyp_base, reverse_hyp, encoding)
    if src is not None and tgt is not None:
        texts = [read_lines(p, encoding) for p in (src, tgt)]
        lengths = [(len(s.split()), len(t.split())) for s, t in zip(*texts)]
        check_lengths([g.possible for g in gold], lengths, str(gold_path))
        check_lengths(links, lengths[skip:], str(hyp))
    typer.echo(alignment_error_rate(gold, links, str(gold_path), str(hyp), skip).text)


def evaluate_answers(hyp: Path, files: list[Path]) -> None:
    """Answers against the questions of bAbI `files` (in order): accuracy and error per task."""
    from seqattn.data import read_lines
    from seqattn.data.babi import babi_task_number, read_babi
    from seqattn.evaluation import format_table
    from seqattn.evaluation.qa import accuracy_by_task

    examples = [ex for path in files for ex in read_babi(path, babi_task_number(path))]
    answers = read_lines(hyp)
    if len(answers) != len(examples):
        raise SeqattnError(f"{hyp}: {len(answers)} answers for the {len(examples)} questions of "
                           f"{', '.join(map(str, files))}; give one answer a line, in the questions' order")
    accuracy = accuracy_by_task(examples, answers)
    rows = [(str(t), f"{a:.1f}", f"{100 - a:.1f}") for t, a in accuracy.items()]
    mean = sum(accuracy.values()) / len(accuracy)
    typer.echo(format_table(rows + [("mean", f"{mean:.1f}", f"{100 - mean:.1f}")], ["task", "accuracy", "error"]))


def evaluate_captions(hyp: Path, recipe: Path, split: str) -> None:
    """Caption results of every image of the recipe's `split` against its references."""
    from seqattn.config import load_config
    from seqattn.data import read_captions
    from seqattn.evaluation import caption_scores, format_table
    from seqattn.evaluation.captions import image_id, read_caption_results

    data = read_captions(load_config(recipe).captions, split, log)
    refs = {str(image_id(path)): caps for path, caps in zip(data.images, data.captions)}
    hyps = read_caption_results(hyp)
    missing = sorted(set(refs) - set(hyps))
    if missing:
        raise SeqattnError(f"{hyp}: no caption for {len(missing)} of the {len(refs)} {split} images (first: {missing[0]})")
    scores = caption_scores({k: hyps[k] for k in refs}, refs, log=log)
    typer.echo(format_table([(name, f"{value:.2f}") for name, value in scores.items()], ["metric", "score (x100)"]))


@app.command()
@user_errors
def align(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="A best.pt or last.pt of a translation model."),
    src: Path = typer.Option(..., "--src", help="Tokenised source sentences, one a line (words split at whitespace)."),
    tgt: Optional[Path] = typer.Option(None, "--tgt", help="Tokenised target sentences, line by line with --src."),
    output: str = typer.Option(
        "-", "--output", "-o", help="Pharaoh links `i-j` (0-based, source word first), one sentence a line; - writes "
                                    "stdout. With --layer auto only the sentences after the first --held-out N: score "
                                    "it with `seqattn evaluate --alignments GOLD --skip-gold N`."),
    extract: str = typer.Option("argmax", help="argmax (each target word's most attended source word) or threshold."),
    threshold: float = typer.Option(0.5, help="With --extract threshold: link where the weight exceeds it."),
    pieces: str = typer.Option("any", help="Subwords to words: any (words linked when any of their pieces are) or "
                                           "sum (source pieces' weights summed, target pieces' averaged)."),
    layer: Optional[str] = typer.Option(None, help="Transformer decoder layer (negative from the last), or auto: "
                                                   "the one of lowest AER on the first --held-out sentences of --gold, "
                                                   "which then get no links. Default: the recipe's model.attention_layer."),
    head: Optional[int] = typer.Option(None, help="Transformer head, -1 their average. Default: model.attention_head."),
    gold: Optional[Path] = typer.Option(None, help="With --layer auto: gold alignments (talp, 1-based, source first)."),
    held_out: int = typer.Option(100, help="With --layer auto: how many first sentences choose the layer; they are "
                                           "not aligned (--output and --translations hold the sentences after them)."),
    reverse_checkpoint: Optional[Path] = typer.Option(
        None, help="A model translating the other way: its links are combined with --symmetrize."),
    symmetrize: str = typer.Option("grow-diag-final", help="intersection, union or grow-diag-final (Koehn et al. 2003)."),
    encoding: str = typer.Option("utf-8", help="Encoding of --src, --tgt and --gold (the RWTH files: latin-1)."),
    own_translations: bool = typer.Option(
        False, "--own-translations", help="Align the model's own translations of --src (the recipe's search) instead of --tgt."),
    translations: Optional[Path] = typer.Option(None, help="With --own-translations: where its translations go, "
                                                           "one a line as the words the links count."),
    device: str = DEVICE,
) -> None:
    """Word alignments from a translation model's attention over given target sentences or its own
    translations: argmax or threshold links, per layer and head for the Transformer, and the
    symmetrised links of two models trained in opposite directions."""
    from seqattn.alignment import (
        EXTRACT, PIECES, SYMMETRIZE, AlignOptions, attention_links, encode_words, hypothesis_pieces,
        own_translations as translate_own, symmetrize as combine,
    )
    from seqattn.alignment.links import check_choice
    from seqattn.data.alignments import read_lines
    from seqattn.evaluation.alignment import read_gold
    from seqattn.api import Model
    from seqattn.training import resolve_device

    for option, value, choices in (("--extract", extract, EXTRACT), ("--pieces", pieces, PIECES),
                                   ("--symmetrize", symmetrize, SYMMETRIZE)):
        check_choice(option, value, choices)
    if layer not in (None, "auto") and not layer.lstrip("-").isdigit():
        raise SeqattnError(f"--layer {layer}: give a decoder layer (an integer) or auto")
    if (layer == "auto") != (gold is not None):
        raise SeqattnError("--layer auto and --gold: give both (the gold alignments choose the layer) or neither")
    if own_translations == (tgt is not None):
        raise SeqattnError("--tgt: give the target sentences, or --own-translations to align the model's translations")
    if own_translations and translations is None:
        raise SeqattnError("--translations: give the file the translations go to with --own-translations")
    dev = resolve_device(device)

    def load(path: Path):
        loaded = Model.from_checkpoints([path], dev)
        loaded.expect("translation")
        return loaded.model, loaded.cfg, loaded.task

    model, cfg, task = load(checkpoint)
    reverse = None if reverse_checkpoint is None else load(reverse_checkpoint)
    src_words = [line.split() for line in read_lines(src, encoding)]
    gold_links = None if gold is None else read_gold(gold, "talp", 1, encoding=encoding)
    skipped = 0 if gold_links is None else held_out
    if gold_links is not None and not 0 < held_out < len(src_words):
        raise SeqattnError(f"--held-out {held_out}: give 1 to {len(src_words) - 1} of the {len(src_words)} sentences "
                           f"of {src} to choose the layer on; the others are aligned")
    if gold_links is not None and held_out > len(gold_links):
        raise SeqattnError(f"--held-out {held_out}: {gold} has {len(gold_links)} sentences; hold out at most that many")
    sources = [encode_words(task.src_tok, words) for words in src_words]
    if own_translations:
        hyps = [hypothesis_pieces(task.tgt_tok, ids) for ids in translate_own(task, model, sources, cfg.search, dev)]
        targets, tgt_words = [p for p, _ in hyps], [words for _, words in hyps]
        translations.write_text("".join(" ".join(words) + "\n" for words in tgt_words[skipped:]), encoding="utf-8")
    else:
        tgt_words = [line.split() for line in read_lines(tgt, encoding)]
        if len(tgt_words) != len(src_words):
            raise SeqattnError(f"{tgt}: {len(tgt_words)} sentences, but {src} has {len(src_words)}; give line-aligned files")
        targets = [encode_words(task.tgt_tok, words) for words in tgt_words]
    opts = AlignOptions(pieces, extract, threshold, None if layer in (None, "auto") else int(layer), head)
    links = attention_links(model, cfg.model.arch, sources, targets, opts, cfg.search.batch_size, dev, gold_links,
                            held_out, log)
    if reverse is not None:
        rev_model, rev_cfg, rev_task = reverse
        rev_gold = None if gold is None else read_gold(gold, "talp", 1, reverse=True, encoding=encoding)
        backward = attention_links(
            rev_model, rev_cfg.model.arch, [encode_words(rev_task.src_tok, words) for words in tgt_words],
            [encode_words(rev_task.tgt_tok, words) for words in src_words], opts, rev_cfg.search.batch_size, dev,
            rev_gold, held_out, log)
        links = [combine(forward, {(i, j) for j, i in back}, symmetrize, len(s), len(t))
                 for forward, back, s, t in zip(links, backward, src_words[skipped:], tgt_words[skipped:])]
    text = "".join(" ".join(f"{i}-{j}" for i, j in sorted(sentence)) + "\n" for sentence in links)
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
    if skipped:
        log(f"{'stdout' if output == '-' else output}: links of sentences {skipped + 1}-{len(src_words)} of {src}, the "
            f"first {skipped} chose the layer; score with `seqattn evaluate --alignments {gold} --skip-gold {skipped}`")


if __name__ == "__main__":
    app()
