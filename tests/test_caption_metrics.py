"""Caption metrics (pycocoevalcap): golden values, the Java path (PTB + METEOR) and the Python fallback."""
from __future__ import annotations

import os
import shutil
import subprocess
import threading

import pytest

from seqattn.errors import SeqattnError
from seqattn.evaluation import caption_scores
from seqattn.evaluation import captions as metrics
from seqattn.evaluation.captions import ptb_tokenize, python_tokenize

REFS = {
    "dog": ["A dog runs on the grass.", "A brown dog is running"],
    "chess": ["Two men play chess", "Men playing a board game ."],
    "girl": ["A girl eats ice-cream!", "A child with an ice cream cone"],
}
HYPS = {k: refs[0] for k, refs in REFS.items()}
PTB_CASES = {  # caption -> what Stanford's PTBTokenizer, then pycocoevalcap's punctuation filter, give
    'A man (in red) said "hi" & 50% / don\'t dogs\' o\'neil 3.5 t-shirt... e.g. U.S.A. -- ok':
        "a man -lrb- in red -rrb- said hi & 50 % / do n't dogs o'neil 3.5 t-shirt e.g. u.s.a. ok",
    "We cannot see the girl's T-shirt, can we?": "we can not see the girl 's t-shirt can we",
    "  Café\u2028naïve  ": "café naïve",
    "": "",
}


@pytest.fixture
def no_java(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)


def test_python_tokenizer_matches_ptb_golden() -> None:
    assert [python_tokenize(t) for t in PTB_CASES] == list(PTB_CASES.values())


def test_fallback_without_java_skips_meteor(no_java: None) -> None:
    logged: list[str] = []
    scores = caption_scores(HYPS, REFS, log=logged.append)
    assert list(scores) == ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr"]
    assert scores["BLEU-4"] == pytest.approx(100) and scores["ROUGE-L"] == pytest.approx(100)
    assert 0 < scores["CIDEr"] < 1000
    assert logged[0].startswith("Java not found: captions tokenised in Python (PTB-like) and METEOR skipped")
    assert logged[-1].startswith("SPICE: skipped")


def test_golden_bleu_rouge_cider(no_java: None) -> None:
    one = caption_scores({"x": "A dog runs fast"}, {"x": ["a dog runs."]}, log=lambda _: None)
    assert one["BLEU-1"] == pytest.approx(75) and one["BLEU-2"] == pytest.approx(100 * (3 / 4 * 2 / 3) ** 0.5)
    assert one["ROUGE-L"] == pytest.approx(100 * 2.44 * 0.75 / (1 + 1.44 * 0.75))  # LCS 3, beta 1.2
    assert one["CIDEr"] == 0  # idf over a single image is log(1) = 0
    same = caption_scores(HYPS, {k: [h] for k, h in HYPS.items()}, log=lambda _: None)
    assert same["CIDEr"] == pytest.approx(1000)  # CIDEr-D of a perfect match is 10
    none = caption_scores({k: "zebra zebra zebra zebra zebra" for k in REFS}, REFS, log=lambda _: None)
    assert none["BLEU-1"] == pytest.approx(0, abs=1e-6) and none["BLEU-4"] == pytest.approx(0, abs=1e-6)
    assert none["ROUGE-L"] == 0 and none["CIDEr"] == 0


def test_mismatched_keys_and_empty_references() -> None:
    with pytest.raises(SeqattnError, match="1 images have a hypothesis or references but not both .first: cat."):
        caption_scores({**HYPS, "cat": "a cat"}, REFS)
    with pytest.raises(SeqattnError, match="image dog: no reference captions"):
        caption_scores(HYPS, {**REFS, "dog": []})
    with pytest.raises(SeqattnError, match="no hypotheses"):
        caption_scores({}, {})


def test_failed_meteor_process_is_reaped_and_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    class DeadMeteor(metrics.Meteor):
        def __init__(self) -> None:  # a "java" that prints an error and exits
            self.meteor_p = subprocess.Popen(["sh", "-c", "echo boom >&2"], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.lock = threading.Lock()

    monkeypatch.setattr(metrics, "Meteor", DeadMeteor)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/java")
    monkeypatch.setattr(metrics, "ptb_tokenize", lambda texts: [python_tokenize(t) for t in texts])
    logged: list[str] = []
    scores = caption_scores(HYPS, REFS, log=logged.append)
    assert "METEOR" not in scores and scores["BLEU-4"] == pytest.approx(100)
    assert "METEOR: skipped, its Java process failed (boom)" in logged
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left, not even a zombie


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")
def test_java_ptb_and_meteor(monkeypatch: pytest.MonkeyPatch) -> None:
    """One METEOR call (its JVM start takes seconds): official tokens, METEOR, same scores as the fallback."""
    assert ptb_tokenize(list(PTB_CASES)) == list(PTB_CASES.values())
    scores = caption_scores(HYPS, REFS, log=lambda _: None)
    assert 95 < scores["METEOR"] <= 100 and scores["BLEU-4"] == pytest.approx(100)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # the METEOR JVM was stopped and reaped
    monkeypatch.setattr(shutil, "which", lambda name: None)
    fallback = caption_scores(HYPS, REFS, log=lambda _: None)
    assert fallback == pytest.approx({k: v for k, v in scores.items() if k != "METEOR"})
