"""The Python API (seqattn.load) on a tiny trained RNNsearch: the same outputs as `seqattn translate`,
n-best lists, attention with its labels, wrong-task errors, and README's example, run as written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import seqattn
from cli import app
from seqattn.errors import SeqattnError

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def sentences(multi30k: Path) -> list[str]:
    return (multi30k / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()[:12] + [""]


def translate_command(checkpoint: Path, source: Path, *options: str) -> list[str]:
    result = CliRunner().invoke(app, ["translate", "-c", str(checkpoint), "-i", str(source), *options],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_api_translates_as_the_command_does(tiny_rnnsearch: Path, sentences: list[str], tmp_path: Path) -> None:
    source = tmp_path / "source.en"
    source.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    model = seqattn.load(tiny_rnnsearch)

    best = model.translate(sentences)
    assert [nbest[0].text for nbest in best] == translate_command(tiny_rnnsearch, source)

    nbest = model.translate(sentences, beam_size=3, nbest=3, length_penalty="none")
    expected = translate_command(tiny_rnnsearch, source, "--beam-size", "3", "--nbest", "3", "--length-penalty", "none")
    got = [(i, p.text, p.score) for i, hyps in enumerate(nbest) for p in hyps]
    assert [f"{i} ||| {text}" for i, text, _ in got] == [line.rsplit(" ||| ", 1)[0] for line in expected]
    for (_, _, score), line in zip(got, expected):  # printed to 4 decimals; a GPU's fp16 may move the last one
        assert score == pytest.approx(float(line.rsplit(" ||| ", 1)[1]), rel=1e-5, abs=2e-4)
    assert [len(hyps) for hyps in nbest[:-1]] == [3] * 12 and len(nbest[-1]) == 1  # an empty line is not decoded
    src_tok = model.task.src_tok
    for ids, hyps in zip(src_tok.encode(sentences[:-1]), nbest):
        for p in hyps:
            assert p.source == src_tok.pieces(ids) + ["</s>"] and p.alpha.shape == (len(p.target), len(p.source))


def test_wrong_method_and_unknown_option_are_errors(tiny_rnnsearch: Path) -> None:
    model = seqattn.load(tiny_rnnsearch)
    with pytest.raises(SeqattnError, match=r"model rnnsearch does not caption images; use .translate\(\)"):
        model.caption(["image.jpg"])
    with pytest.raises(SeqattnError, match="model rnnsearch does not answer questions"):
        model.answer(["1 Mary went to the kitchen.\n2 Where is Mary?"])
    with pytest.raises(SeqattnError, match="search option 'beam' is unknown; choose among beam_size, nbest"):
        model.translate(["A dog."], beam=3)
    with pytest.raises(SeqattnError, match="search.nbest: 4 is larger than search.beam_size 2"):
        model.translate(["A dog."], beam_size=2, nbest=4)


def test_readme_python_api_example_runs(tiny_rnnsearch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README's "Python API" code block, run in a folder where runs/demo is the tiny model's run."""
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "demo").symlink_to(tiny_rnnsearch.parent)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {})
