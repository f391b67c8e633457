"""Alignment error rate (Och & Ney 2003): hand-counted values, the formats, the shared reference
outputs' published AERs, and one-line errors for bad files."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from seqattn.config import data_root
from seqattn.data.alignments import read_hypothesis
from seqattn.errors import SeqattnError
from seqattn.evaluation.alignment import Gold, alignment_error_rate, read_gold

ALIGNMENTS = data_root(None) / "alignments"
runner = CliRunner()


def test_aer_precision_recall_by_hand():
    gold = [Gold(sure={(0, 0), (1, 1)}, possible={(0, 0), (1, 1), (1, 2)}), Gold(sure={(0, 1)}, possible={(0, 1)})]
    hyp = [{(0, 0), (1, 2), (2, 2)}, {(0, 0)}]
    # |A| = 4, |S| = 3, |A ∩ S| = 1, |A ∩ P| = 2: precision 2/4, recall 1/3, AER 1 - 3/7
    score = alignment_error_rate(gold, hyp)
    assert (score.precision, score.links) == (50.0, 4)
    assert score.recall == pytest.approx(100 / 3) and score.aer == pytest.approx(100 * 4 / 7)


def test_talp_and_wpt_gold_bases_and_directions(tmp_path: Path):
    talp = tmp_path / "gold.talp"
    talp.write_text("1-1 2p3 3?2\n2-1\n\n\n", encoding="utf-8")  # blank trailing lines are no sentences
    assert read_gold(talp) == [Gold({(0, 0)}, {(0, 0), (1, 2), (2, 1)}), Gold({(1, 0)}, {(1, 0)})]
    assert read_gold(talp, reverse=True)[0].possible == {(0, 0), (2, 1), (1, 2)}
    wpt = tmp_path / "gold.wpt"
    wpt.write_text("1 1 1 S\n1 2 3 P\n1 3 2 P\n2 2 1\n", encoding="utf-8")  # no kind: sure
    assert read_gold(wpt, fmt="wpt") == read_gold(talp)
    hyp = tmp_path / "hyp"
    hyp.write_text("0-0 1-2\n1-0\n", encoding="utf-8")
    assert read_hypothesis(hyp) == [{(0, 0), (1, 2)}, {(1, 0)}]
    assert read_hypothesis(hyp, base=0, reverse=True) == [{(0, 0), (2, 1)}, {(0, 1)}]


@pytest.mark.parametrize("gold, hyp, aer", [
    ("de-en-rwth/alignmentDeEn.talp", "giza-test.deen.talp", 20.9),  # the reference outputs' own figures
    ("de-en-rwth/alignmentDeEn.talp", "fastalign-test.deen.talp", 28.5),
    ("de-en-rwth/alignmentDeEn.talp", "fastalign-test.deen.grow-diagonal.talp", 27.0),
    ("en-fr-hansards/enfr.gold", "giza-test.enfr.grow-diagonal.talp", 5.9),
    ("en-fr-hansards/enfr.gold", "fastalign-test.enfr.grow-diagonal.talp", 10.5),
])
def test_reference_outputs_score_their_published_aer(gold: str, hyp: str, aer: float):
    if not ALIGNMENTS.is_dir():
        pytest.skip(f"real data not found at {ALIGNMENTS}")
    result = runner.invoke(app, ["evaluate", "--alignments", str(ALIGNMENTS / gold), "--hyp",
                                 str(ALIGNMENTS / "reference-outputs" / hyp), "--encoding", "latin-1"])
    assert result.exit_code == 0, result.output
    assert float(result.stdout.split()[1].rstrip("%")) == pytest.approx(aer, abs=0.15)


@pytest.mark.parametrize("gold_text, hyp_text, message", [
    ("1-1\n2-2\n", "0-0\n", "hyp: 1 sentences, but"),
    ("1-1\n", "0x0\n", "hyp line 1: link '0x0' is not i-j"),
    ("1-1\n", "0p0\n", "hyp line 1: link '0p0' is not i-j"),
    ("1-1 0-1\n", "0-0\n", "gold line 1: link '0-1' is below index base 1"),
    ("1-1 1-4\n", "0-0\n", "gold line 1: link 0-3 (0-based) is beyond the sentence of 2 source and 3 target words"),
])
def test_bad_alignment_files_give_one_line_naming_file_and_line(tmp_path: Path, gold_text: str, hyp_text: str,
                                                                message: str):
    (tmp_path / "gold").write_text(gold_text)
    (tmp_path / "hyp").write_text(hyp_text)
    (tmp_path / "src").write_text("a b\n" * gold_text.count("\n"))
    (tmp_path / "tgt").write_text("x y z\n" * gold_text.count("\n"))
    result = runner.invoke(app, ["evaluate", "--alignments", str(tmp_path / "gold"), "--hyp", str(tmp_path / "hyp"),
                                 "--src", str(tmp_path / "src"), "--ref", str(tmp_path / "tgt")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_unknown_format_is_named():
    with pytest.raises(SeqattnError, match="--alignment-format pharaoh: choose one of talp, wpt"):
        read_gold(Path("x"), fmt="pharaoh")
