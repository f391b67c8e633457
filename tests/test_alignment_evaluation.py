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


def score(tmp_path: Path, gold: str, hyp: str, *options: str):
    for name, text in (("gold", gold), ("hyp", hyp), ("src", "a\na b\na b c\n"), ("tgt", "x\nx y\nx\n")):
        (tmp_path / name).write_text(text)
    return runner.invoke(app, ["evaluate", "--alignments", str(tmp_path / "gold"), "--hyp", str(tmp_path / "hyp"),
                               "--src", str(tmp_path / "src"), "--ref", str(tmp_path / "tgt"), *options])


def test_skip_gold_scores_the_sentences_after_the_first_n(tmp_path: Path):
    # hyp line 1 is gold sentence 2 and line 2 sentence 3 (3 source words, 1 target word): |A| = 4, |S| = 3,
    # |A ∩ S| = |A ∩ P| = 3: precision 75, recall 100, AER 1 - 6/7
    result = score(tmp_path, "1-1\n1-1 2-2\n3-1\n", "0-0 1-1\n2-0 1-0\n", "--skip-gold", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "AER 14.3% (75.0%/100.0%/4)\n"
    # without the skip the same lines are sentences 1 and 2, where 1-1 is beyond the first one
    result = score(tmp_path, "1-1\n1-1 2-2\n", "0-0 1-1\n2-0 1-0\n")
    assert result.exit_code == 2 and "hyp line 1: link 1-1 (0-based) is beyond the sentence of 1 source" in result.stderr


@pytest.mark.parametrize("gold, hyp, options, message", [
    ("1-1\n1-1\n1-1\n", "0-0\n0-0\n", [], "{gold} has 3 sentences, {hyp} has 2: {hyp} ends at line 2, "
                                             "before sentence 3 of {gold}; give alignments of the same sentences"),
    ("1-1\n1-1\n", "0-0\n0-0\n0-0\n", [], "{gold} has 2 sentences, {hyp} has 3: {gold} ends at sentence 2, "
                                             "{hyp} goes on at line 3; give alignments of the same sentences"),
    ("1-1\n1-1\n1-1\n", "0-0\n", ["--skip-gold", "1"],
     "{gold} has 3 sentences (the first 1 skipped: --skip-gold), {hyp} has 1: {hyp} ends at line 1, before sentence 3 "
     "of {gold}; give alignments of the same sentences"),
    ("1-1\n1-1\n1-1\n", "0-0\n0-0\n0-0\n", ["--skip-gold", "1"],
     "{gold} has 3 sentences (the first 1 skipped: --skip-gold), {hyp} has 3: {gold} ends at sentence 3, {hyp} goes "
     "on at line 3; give alignments of the same sentences"),
    ("1-1\n", "", ["--skip-gold", "2"], "--skip-gold 2: {gold} has 1 sentences; skip 0 to 1 of them"),
])
def test_sentence_counts_that_differ_name_the_line_where_a_file_runs_out(tmp_path: Path, gold: str, hyp: str,
                                                                         options: list[str], message: str):
    result = score(tmp_path, gold, hyp, *options)
    names = {"gold": tmp_path / "gold", "hyp": tmp_path / "hyp"}
    assert result.exit_code == 2 and result.stderr == f"error: {message.format(**names)}\n", result.output


def test_unreadable_text_files_give_one_line(tmp_path: Path):
    assert score(tmp_path, "1-1\n", "0-0\n").exit_code == 0
    (tmp_path / "latin1").write_bytes(b"caf\xe9\n")
    for src, message in ((tmp_path / "latin1", "latin1: not valid utf-8 (byte 3); give its --encoding"),
                         (tmp_path / "missing", "missing: file not found")):
        result = runner.invoke(app, ["evaluate", "--alignments", str(tmp_path / "gold"), "--hyp", str(tmp_path / "hyp"),
                                     "--src", str(src), "--ref", str(tmp_path / "tgt")])
        assert result.exit_code == 2 and result.stderr.startswith(f"error: {tmp_path / message}"), result.output
        assert len(result.stderr.splitlines()) == 1


def test_unknown_format_is_named():
    with pytest.raises(SeqattnError, match="--alignment-format pharaoh: choose one of talp, wpt"):
        read_gold(Path("x"), fmt="pharaoh")
