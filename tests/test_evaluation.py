"""Scores against sacreBLEU golden values, reference checks, length buckets and file reading."""

import pytest
import sacrebleu

from seqattn.errors import SeqattnError
from seqattn.evaluation import bleu_by_length, corpus_bleu, corpus_scores, format_table

HYPS = ["the cat sat on the mat", "a dog barked at the postman loudly", "hello world"]
REFS = ["the cat sat on a mat", "the dog barked at the postman", "hello there world"]


def test_identical_is_100():
    assert corpus_bleu(HYPS, [HYPS]).score == pytest.approx(100.0)


def test_matches_sacrebleu():
    expected = sacrebleu.corpus_bleu(HYPS, [REFS])
    got = corpus_bleu(HYPS, [REFS])
    assert 0 < got.score < 100
    assert got.score == pytest.approx(expected.score)
    assert got.text == str(expected)
    chrf = corpus_scores(HYPS, [REFS])[1]
    assert chrf.name == "chrF2" and chrf.score == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)


def test_signatures():
    bleu, chrf = corpus_scores(HYPS, [REFS])
    assert bleu.name == "BLEU"
    assert "nrefs:1" in bleu.signature and "version" in bleu.signature and "tok:13a" in bleu.signature
    assert "nrefs:1" in chrf.signature
    assert "nrefs:2" in corpus_bleu(HYPS, [REFS, HYPS]).signature


def test_length_mismatch():
    with pytest.raises(SeqattnError, match="reference stream 2 has 2 lines"):
        corpus_scores(HYPS, [REFS, REFS[:2]])
    with pytest.raises(SeqattnError, match="source has 2 lines"):
        bleu_by_length(HYPS[:2], HYPS, [REFS])


def test_bleu_by_length():
    sources = [" ".join(["w"] * n) for n in (3, 10, 11, 25, 60, 51)]
    hyps = [f"sentence number {i} here" for i in range(6)]
    refs = [f"sentence number {i} there" for i in range(6)]
    rows = bleu_by_length(sources, hyps, [refs])
    assert [(label, n) for label, n, _ in rows] == [("1-10", 2), ("11-20", 1), ("21-30", 1), ("51+", 2)]
    assert sum(n for _, n, _ in rows) == len(sources)
    assert rows[0][2] == pytest.approx(sacrebleu.corpus_bleu(hyps[:2], [refs[:2]]).score)
    table = format_table(rows, ["length", "sentences", "BLEU"])
    assert table.splitlines()[0].split("|")[1].strip() == "length" and "51+" in table
    with pytest.raises(SeqattnError, match="strictly increasing"):
        bleu_by_length(sources, hyps, [refs], edges=[20, 10])


