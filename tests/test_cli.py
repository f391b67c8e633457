"""The command line end to end on a small real corpus, and its one-line errors on bad input."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import torch
import typer.main
import yaml
from typer.testing import CliRunner

from cli import app
from seqattn.allocator import KERNEL_CACHE_VARIABLES
from seqattn.config import SubwordConfig, load_config
from seqattn.data import read_lines
from seqattn.data.subwords import train_sentencepiece
from seqattn.training import load_checkpoint, save_checkpoint

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(autouse=True)
def environment():
    """`translate` sets process-wide variables (the kernel caches' capacity): undo them after each test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def trained(small_corpus: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    result = invoke(
        "train", Path(__file__).resolve().parent.parent / "recipes/bahdanau2015/rnnsearch.yaml",
        f"out_dir={out}", f"data.root={small_corpus}", "data.corpus=.", "subword.vocab_size=250",
        "model.emb_dim=16", "model.hidden_dim=16", "model.attention_dim=16", "model.readout_dim=16",
        "train.max_steps=4", "train.valid_every=4", "train.batch_tokens=2000", "train.progress=false",
        "train.max_minutes=0", "search.max_len_b=3", "search.max_len_a=0.5",
    )
    assert result.exit_code == 0, result.output
    assert "training stopped: reached train.max_steps=4" in result.output
    return out / "best.pt"


def test_translate_nbest_attention_and_evaluate(trained: Path, small_corpus: Path, tmp_path: Path) -> None:
    src = small_corpus / "test_2016_flickr.en"
    hyp = tmp_path / "test.hyp"
    result = invoke("translate", "-c", trained, "-i", src, "-o", hyp, "--beam-size", 3,
                    "--attention-dir", tmp_path / "att", "--attention-max", 2)
    assert result.exit_code == 0, result.output
    assert len(hyp.read_text(encoding="utf-8").splitlines()) == 20
    assert sorted(p.name for p in (tmp_path / "att").iterdir()) == ["00000.json", "00000.png", "00001.json", "00001.png"]
    first = json.loads((tmp_path / "att" / "00000.json").read_text(encoding="utf-8"))
    assert first["source"][-1] == "</s>" and len(first["alpha"][0]) == len(first["source"])

    nbest = invoke("translate", "-c", trained, "-i", src, "--beam-size", 3, "--nbest", 3)
    lines = nbest.stdout.splitlines()
    assert len(lines) == 60 and lines[0].startswith("0 ||| ") and lines[-1].startswith("19 ||| ")

    scored = invoke("evaluate", "--hyp", hyp, "--ref", small_corpus / "test_2016_flickr.de", "--src", src)
    assert scored.exit_code == 0
    assert scored.stdout.startswith("BLEU = ") and "\nchrF2 = " in scored.stdout
    assert scored.stdout.count("signature: nrefs:1|case:mixed") == 2 and "| 1-10 " in scored.stdout


def test_translate_a_split_prints_scores(trained: Path) -> None:
    result = invoke("translate", "-c", trained, "--split", "test", "--beam-size", 1)
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 20 and "test: BLEU = " in result.stderr and "signature: nrefs:1" in result.stderr


MODULES_AT_EXIT = """
import atexit, os, runpy, sys
atexit.register(lambda: print("KERNEL_CACHES", os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"),
                              os.environ.get("LRU_CACHE_CAPACITY")))
atexit.register(lambda: print("MODULES", " ".join(sys.modules)))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_translate_imports_no_image_libraries_and_caps_kernel_caches(trained: Path) -> None:
    """Text decoding stays clear of torchvision (it loads torch._dynamo: ~165 MiB of peak memory) and of
    matplotlib unless --attention-dir asks for pictures, and caps oneDNN's kernel caches."""
    cli_py = Path(__file__).resolve().parent.parent / "cli.py"
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_CACHE_VARIABLES}
    out = subprocess.run([sys.executable, "-c", MODULES_AT_EXIT, str(cli_py), "translate", "-c", str(trained),
                          "--split", "test", "--beam-size", "1"], capture_output=True, text=True, check=True, env=env)
    loaded = set(out.stdout.rsplit("MODULES ", 1)[1].split())
    assert "seqattn.inference" in loaded
    assert not loaded & {"torchvision", "torch._dynamo", "matplotlib"}
    assert "KERNEL_CACHES 32 32" in out.stdout


@pytest.mark.parametrize("args,message", [
    (["train", "missing.yaml"], "error: missing.yaml: config file not found"),
    (["translate", "-c", "missing.pt", "-i", "x"], "error: missing.pt: checkpoint not found"),
    (["evaluate", "--hyp", "missing.hyp", "--ref", "missing.ref"], "error: missing.hyp: file not found"),
    (["average", "-c", "missing.pt", "-o", "avg.pt"], "error: missing.pt: checkpoint not found"),
])
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_misaligned_references_and_unknown_options(tmp_path: Path, small_corpus: Path) -> None:
    hyp = tmp_path / "h.txt"
    hyp.write_text("a\nb\n", encoding="utf-8")
    result = invoke("evaluate", "--hyp", hyp, "--ref", small_corpus / "val.de")
    assert result.exit_code == 2 and "lines but there are 2 hypotheses" in result.stderr
    result = invoke("train", Path(__file__).resolve().parent.parent / "recipes/bahdanau2015/rnnsearch.yaml", "train.lrr=1")
    assert result.exit_code == 2 and "unknown option(s) train.lrr" in result.stderr


def test_every_command_explains_its_options() -> None:
    for command in ("preprocess", "train", "translate", "evaluate"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


def test_every_option_has_help_text() -> None:
    commands = typer.main.get_command(app).commands
    assert {"translate", "average"} <= commands.keys()
    for name, command in commands.items():
        for param in command.params:
            assert not isinstance(param, click.Option) or param.help, f"{name} {param.opts} has no help"


def perturbed_copy(checkpoint: Path, path: Path, seed: int) -> None:
    """Another member beside `checkpoint`: its parameters plus noise, the same subword model."""
    ckpt = load_checkpoint(checkpoint)
    gen = torch.Generator().manual_seed(seed)
    ckpt["model"] = {k: v + 0.1 * torch.randn(v.shape, generator=gen) for k, v in ckpt["model"].items()}
    save_checkpoint(ckpt, path)


def test_ensemble_average_and_sampling(trained: Path, small_corpus: Path, tmp_path: Path) -> None:
    src = small_corpus / "test_2016_flickr.en"
    other = trained.parent / "other.pt"
    perturbed_copy(trained, other, seed=0)

    single = invoke("translate", "-c", trained, "-i", src, "--beam-size", 3)
    twice = invoke("translate", "-c", trained, "-c", trained, "-i", src, "--beam-size", 3)
    assert single.exit_code == 0 and twice.exit_code == 0
    assert twice.stdout == single.stdout and len(single.stdout.splitlines()) == 20  # two equal members are one
    pair = invoke("translate", "-c", trained, "-c", other, "-i", src, "--beam-size", 3, "--nbest", 2,
                  "--coverage-penalty", 0.2, "--no-repeat-ngram", 2)
    assert pair.exit_code == 0, pair.output
    assert len(pair.stdout.splitlines()) == 40 and pair.stdout.startswith("0 ||| ")

    averaged = tmp_path / "elsewhere" / "avg.pt"
    result = invoke("average", "-c", trained, "-c", other, "-o", averaged)
    assert result.exit_code == 0, result.output
    assert (averaged.parent / "spm.model").read_bytes() == (trained.parent / "spm.model").read_bytes()
    expected = {k: (v + load_checkpoint(other)["model"][k]) / 2 for k, v in load_checkpoint(trained)["model"].items()}
    assert all(torch.allclose(load_checkpoint(averaged)["model"][k], v) for k, v in expected.items())
    hyp = tmp_path / "avg.hyp"
    result = invoke("translate", "-c", averaged, "-i", src, "-o", hyp, "--beam-size", 1)
    assert result.exit_code == 0 and len(hyp.read_text(encoding="utf-8").splitlines()) == 20

    sampled = [invoke("translate", "-c", averaged, "-i", src, "--sampling", "--nbest", 7, "--top-p", 0.9,
                      "--temperature", 1.2, "--seed", 3) for _ in range(2)]
    assert sampled[0].exit_code == 0, sampled[0].output
    lines = sampled[0].stdout.splitlines()
    assert sampled[1].stdout == sampled[0].stdout and len(lines) == 140 and lines[-1].startswith("19 ||| ")


def test_ensemble_and_search_errors_are_one_line(trained: Path, small_corpus: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    shutil.copytree(trained.parent, foreign)
    lines = read_lines(small_corpus / "train.en") + read_lines(small_corpus / "train.de")
    train_sentencepiece(lines, foreign / "spm", SubwordConfig(model_type="bpe", vocab_size=250))  # same size
    src = small_corpus / "test_2016_flickr.en"
    for args, message in [
        (["-c", foreign / "best.pt"], f"{foreign / 'best.pt'}: its source vocabulary"),
        (["--sampling", "--top-p", 1.5], "error: search.top_p: must be in (0, 1]"),
        (["--top-k", -1, "--sampling"], "error: search.top_k"),
        (["--beam-size", 2, "--coverage-penalty", -0.5], "error: search.coverage_penalty"),
        (["--no-repeat-ngram", -1], "error: search.no_repeat_ngram"),
        (["--beam-size", 0], "error: search.beam_size: the beam size must be at least 1, got 0"),
        (["--beam-size", -2, "--nbest", 1], "error: search.beam_size: the beam size must be at least 1, got -2"),
        (["--nbest", 0], "error: search.nbest: must be at least 1"),
        (["--sampling", "--nbest", 0], "error: search.nbest: must be at least 1"),
        (["--batch-size", 0], "error: search.batch_size: must be at least 1"),
        (["--length-penalty", "gnm"], "error: search.length_penalty: unknown 'gnm'"),
    ]:
        assert_one_line_error(invoke("translate", "-c", trained, "-i", src, *args), message)
    missing = tmp_path / "missing.txt"
    result = invoke("translate", "-c", trained, "-i", missing)
    assert_one_line_error(result, f"error: {missing}: file not found")
    assert "data." not in result.stderr


def assert_one_line_error(result, message: str) -> None:
    """Exit status 2 and `message` on stderr, one line, no traceback."""
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_empty_lines_translate_to_empty_lines(trained: Path, small_corpus: Path, tmp_path: Path) -> None:
    """An empty input line is not decoded: its output line is empty, and every other line, the n-best
    ids and the attention files stay where their input is."""
    first, second = read_lines(small_corpus / "test_2016_flickr.en")[:2]
    src, alone = tmp_path / "gaps.en", tmp_path / "alone.en"
    src.write_text(f"{first}\n\n{second}\n\n", encoding="utf-8")
    alone.write_text(f"{first}\n{second}\n", encoding="utf-8")
    with_gaps = invoke("translate", "-c", trained, "-i", src, "--beam-size", 2, "--attention-dir", tmp_path / "att")
    without = invoke("translate", "-c", trained, "-i", alone, "--beam-size", 2)
    assert with_gaps.exit_code == 0, with_gaps.output
    lines = with_gaps.stdout.split("\n")
    assert lines[1] == lines[3] == lines[4] == "" and len(lines) == 5
    assert [lines[0], lines[2]] == without.stdout.splitlines() and all(without.stdout.splitlines())
    assert sorted(p.name for p in (tmp_path / "att").iterdir()) == ["00000.json", "00000.png", "00002.json", "00002.png"]
    nbest = invoke("translate", "-c", trained, "-i", src, "--beam-size", 2, "--nbest", 2)
    assert nbest.exit_code == 0, nbest.output
    ids = [line.split(" ||| ")[0] for line in nbest.stdout.splitlines()]
    assert ids == ["0", "0", "1", "2", "2", "3"]
    assert nbest.stdout.splitlines()[2].startswith("1 |||  ||| ")


def test_translate_reads_stdin_and_splits(trained: Path, small_corpus: Path) -> None:
    """stdin (-i -, the default) gives what the file gives; --split valid / train translate those splits."""
    src = small_corpus / "test_2016_flickr.en"
    from_file = invoke("translate", "-c", trained, "-i", src, "--beam-size", 1)
    from_stdin = runner.invoke(app, ["translate", "-c", str(trained), "--beam-size", "1"],
                               input=src.read_text(encoding="utf-8"), catch_exceptions=False)
    assert from_stdin.exit_code == 0 and from_stdin.stdout == from_file.stdout and len(from_file.stdout.splitlines()) == 20
    for split, n in (("valid", 30), ("train", 400)):
        result = invoke("translate", "-c", trained, "--split", split, "--beam-size", 1, "--batch-size", 128)
        assert result.exit_code == 0, result.output
        assert len(result.stdout.splitlines()) == n and f"{split}: BLEU = " in result.stderr


def test_bf16_decoding_on_the_cpu(trained: Path, small_corpus: Path) -> None:
    """--precision bf16 decodes under CPU autocast end to end: every line translated."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.ones(2, 2) @ torch.ones(2, 2)
    except RuntimeError as err:
        pytest.skip(f"this CPU has no bf16 autocast: {err}")
    result = invoke("translate", "-c", trained, "-i", small_corpus / "test_2016_flickr.en", "--device", "cpu",
                    "--precision", "bf16", "--beam-size", 2)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 20


@pytest.mark.parametrize("override, key", [
    ("search.length_penalty=gnm", "search.length_penalty"), ("search.beam_size=-1", "search.beam_size"),
    ("model.arch=rnnserch", "model.arch"), ("model.score=dott", "model.score"),
    ("model.alignment=local", "model.alignment"), ("model.attend=sof", "model.attend"),
    ("model.tying=adjacant", "model.tying"), ("model.norm=middle", "model.norm"),
    ("train.optimizer=adamw", "train.optimizer"), ("train.accumulate=0", "train.accumulate"),
    ("subword.model_type=word", "subword.model_type"), ("search.top_p=0", "search.top_p"),
    ("train.collective_timeout=0", "train.collective_timeout"),
])
def test_a_bad_option_stops_training_before_any_work(override: str, key: str, tmp_path: Path) -> None:
    """The whole config is checked on loading: nothing is read or written (no sentencepiece, no out_dir)."""
    out = tmp_path / "run"
    result = invoke("train", Path(__file__).resolve().parent.parent / "recipes/bahdanau2015/rnnsearch.yaml",
                    f"out_dir={out}", f"data.root={tmp_path / 'no-data'}", override)
    assert_one_line_error(result, f"rnnsearch.yaml: {key}: ")
    assert not out.exists()


def test_foreign_files_are_not_checkpoints_and_run_no_code(tmp_path: Path) -> None:
    """Random bytes and a pickle that would run a command give one line; the command never runs."""
    marker = tmp_path / "ran"

    class RunsCode:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    noise, pickled = tmp_path / "noise.pt", tmp_path / "pickled.pt"
    noise.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                    dtype=torch.uint8).numpy().tobytes())
    torch.save({"config": RunsCode(), "model": {}}, pickled)
    for path in (noise, pickled):
        for command in (["translate", "-c", path, "-i", noise], ["average", "-c", path, "-o", tmp_path / "avg.pt"]):
            result = invoke(*command)
            assert_one_line_error(result, f"error: {path}: not a seqattn checkpoint: ")
            assert "weights_only" not in result.stderr
    assert "posix.system" in invoke("translate", "-c", pickled).stderr
    assert not marker.exists()


@pytest.mark.parametrize("model", ["trained", "tiny_transformer"])  # RNNsearch, Transformer
def test_int8_decoding_on_the_cpu(model: str, small_corpus: Path, request: pytest.FixtureRequest) -> None:
    """--precision int8 quantises the model once loaded and translates every line."""
    result = invoke("translate", "-c", request.getfixturevalue(model), "-i", small_corpus / "test_2016_flickr.en",
                    "--device", "cpu", "--precision", "int8", "--beam-size", 2)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 20


def test_int8_decoding_on_a_gpu_is_one_line_of_error(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("seqattn.training.resolve_device", lambda device: torch.device("cuda"))  # as on a GPU machine
    result = invoke("translate", "-c", trained, "--precision", "int8")
    assert_one_line_error(result, "error: --precision=int8 runs on the CPU only")


def test_fp16_decoding_needs_a_gpu(trained: Path, small_corpus: Path) -> None:
    result = invoke("translate", "-c", trained, "-i", small_corpus / "val.en", "--device", "cpu", "--precision", "fp16")
    assert result.exit_code == 2 and "--precision=fp16 needs a CUDA device" in result.stderr


@pytest.fixture
def captioner(tiny_flickr: Path, tmp_path: Path) -> Path:
    """The xu2015 recipe shrunk: a random frozen ResNet-18 at 64 pixels (2 x 2 grid), 4 updates."""
    out = tmp_path / "caption-run"
    result = invoke(
        "train", Path(__file__).resolve().parent.parent / "recipes/xu2015/soft.yaml", *caption_overrides(tiny_flickr, out),
        "train.max_steps=4", "train.valid_every=4",
    )
    assert result.exit_code == 0, result.output
    return out / "best.pt"


def caption_overrides(data: Path, out: Path) -> list[str]:
    return [f"out_dir={out}", f"captions.root={data.parent}", f"captions.dataset={data.name}",
            "backbone.name=resnet18", "backbone.pretrained=none", "backbone.image_size=64", "backbone.grid=2",
            "model.emb_dim=16", "model.hidden_dim=16", "model.attention_dim=16", "train.progress=false",
            "train.max_minutes=0", "search.max_len_b=5"]


def test_caption_writes_jsonl_coco_results_and_attention_figures(captioner: Path, tiny_flickr: Path, tmp_path: Path) -> None:
    names = (tiny_flickr / "Flickr_8k.devImages.txt").read_text().split()[:3]
    listing = tmp_path / "images.txt"
    listing.write_text("".join(f"{tiny_flickr / 'images' / n}\n" for n in names))
    out, coco, figures = tmp_path / "captions.jsonl", tmp_path / "results.json", tmp_path / "attention"
    result = invoke("caption", listing, "-c", captioner, "-o", out, "--coco", coco, "--beam-size", "3", "--nbest", "2",
                    "--attention-dir", figures)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(r["image"]).name for r in rows] == names
    assert all(len(r["nbest"]) == 2 and r["nbest"][0]["caption"] == r["caption"] for r in rows)
    assert [r["image_id"] for r in json.loads(coco.read_text())] == [Path(n).stem for n in names]
    for name in names:
        weights = json.loads((figures / f"{Path(name).stem}.json").read_text())
        assert len(weights["alpha"]) == len(weights["words"]) and len(weights["alpha"][0]) == 4
        assert (figures / f"{Path(name).stem}.png").stat().st_size > 0


def test_caption_rejects_a_translation_model_and_a_bad_image(captioner: Path, trained: Path, tmp_path: Path) -> None:
    image = tmp_path / "broken.jpg"
    image.write_bytes(b"\xff\xd8 not a jpeg")
    result = invoke("caption", image, "-c", trained)
    assert result.exit_code == 2 and "does not caption images" in result.output
    result = invoke("caption", image, "-c", captioner)
    assert result.exit_code == 2 and "broken.jpg" in result.output and "Traceback" not in result.output


def test_nn_baseline_and_caption_evaluation(tiny_flickr: Path, tmp_path: Path) -> None:
    """The nearest-neighbour baseline's captions score with every caption metric; a missing image is named."""
    recipe = Path(__file__).resolve().parent.parent / "recipes/xu2015/soft.yaml"
    overrides = caption_overrides(tiny_flickr, tmp_path / "run")
    nn = tmp_path / "nn.jsonl"
    assert invoke("nn-baseline", recipe, *overrides, "-o", nn).exit_code == 0
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump(load_config(recipe, overrides).to_dict()))
    result = invoke("evaluate", "--hyp", nn, "--captions", config)
    assert result.exit_code == 0, result.output
    for metric in ("BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr"):
        assert metric in result.output
    coco = tmp_path / "results.json"  # the same captions as a COCO results JSON score the same
    coco.write_text(json.dumps([{"image_id": Path(r["image"]).stem, "caption": r["caption"]}
                                for r in map(json.loads, nn.read_text().splitlines())]))
    from_coco = invoke("evaluate", "--hyp", coco, "--captions", config)
    assert from_coco.exit_code == 0 and from_coco.stdout == result.stdout, from_coco.output
    rows = nn.read_text().splitlines()
    nn.write_text("\n".join(rows[1:]) + "\n")
    result = invoke("evaluate", "--hyp", nn, "--captions", config)
    assert result.exit_code == 2 and "no caption for 1 of the 4 valid images" in result.output
