"""The command line end to end on a small real corpus, and its one-line errors on bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


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


@pytest.mark.parametrize("args,message", [
    (["train", "missing.yaml"], "error: missing.yaml: config file not found"),
    (["translate", "-c", "missing.pt", "-i", "x"], "error: missing.pt: checkpoint not found"),
    (["evaluate", "--hyp", "missing.hyp", "--ref", "missing.ref"], "error: missing.hyp: file not found"),
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
