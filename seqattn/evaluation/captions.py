"""Caption metrics as the COCO caption evaluation computes them (pycocoevalcap): BLEU-1..4, METEOR,
ROUGE-L and CIDEr, after PTB tokenisation of hypotheses and references.

Scores are reported x100 (BLEU-4 24.3, not 0.243), as in Xu et al. (2015), Table 1, and as
sacreBLEU reports BLEU elsewhere in seqattn; CIDEr x100 is the usual "CIDEr 94.0".

Two things pycocoevalcap does are done differently here:
- PTB tokenisation runs the Stanford jar it ships on a file in a private temporary folder (its own
  wrapper writes into the installed package, which may be read-only), once for hypotheses and
  references together. Without Java a Python tokeniser imitates it (see `python_tokenize`) and
  METEOR (a Java program too) is skipped, with a message.
- METEOR's Java process is always stopped after the call: the wrapper's own __del__ waits on a lock
  that a failed call leaves held, which can hang the interpreter.
SPICE is skipped: it downloads Stanford CoreNLP on first use, which fails offline.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer import ptbtokenizer

from seqattn.errors import SeqattnError

PTB_JAR = Path(ptbtokenizer.__file__).with_name(ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)
PUNCTUATIONS = frozenset(ptbtokenizer.PUNCTUATIONS)  # PTB tokens pycocoevalcap drops; it keeps "-lrb-" and so do we
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-", '"': "``"}
_CLITIC = re.compile(r"(?<=\w)(n't|'s|'re|'ve|'ll|'d|'m)\b")  # PTB splits "don't" -> "do n't", "dog's" -> "dog 's"
_COMPOUND = re.compile(r"\b(can(?=not\b)|gon(?=na\b)|wan(?=na\b)|got(?=ta\b))")  # PTB: "cannot" -> "can not"
_TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|(?:\w\.){2,}|\w+(?:[-.'/&]\w+)*|\.\.\.|--|\S")


def python_tokenize(text: str) -> str:
    """A Python stand-in for pycocoevalcap's PTB tokenisation of a caption: lower-case; split off clitics
    ('s, n't, ...), "cannot" and the like, and punctuation, keeping it inside words, numbers and acronyms
    ("t-shirt", "3.5", "u.s."); write brackets as PTB does ("-lrb-"); drop the punctuation tokens
    pycocoevalcap drops. It agrees with the Java tokeniser on all 4,330 captions of flickr8k-1k."""
    text = _COMPOUND.sub(r"\1 ", _CLITIC.sub(r" \1", text.lower()))
    tokens = (_BRACKETS.get(t, t) for t in _TOKEN.findall(text))
    return " ".join(t for t in tokens if t not in PUNCTUATIONS)


def ptb_tokenize(texts: list[str]) -> list[str]:
    """Stanford PTBTokenizer (pycocoevalcap's jar, lower-cased, one output line per text) minus punctuation."""
    with tempfile.TemporaryDirectory(prefix="seqattn-ptb-") as tmp:
        path = Path(tmp) / "captions.txt"
        path.write_text("".join(" ".join(t.split()) + "\n" for t in texts), encoding="utf-8")
        cmd = ["java", "-cp", str(PTB_JAR), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", "-encoding", "utf-8", str(path)]
        result = subprocess.run(cmd, capture_output=True, check=False)
    lines = result.stdout.decode("utf-8").splitlines()
    if result.returncode != 0 or len(lines) != len(texts):
        error = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SeqattnError(
            f"the PTB tokenizer ({PTB_JAR}) failed: {error[-1] if error else f'{len(lines)} lines for {len(texts)}'}; "
            "check the Java installation"
        )
    return [" ".join(t for t in line.split() if t not in PUNCTUATIONS) for line in lines]


def _meteor(refs: dict[str, list[str]], hyps: dict[str, list[str]], log: Callable[[str], None]) -> float | None:
    """METEOR 1.5 through pycocoevalcap's Java client; the process is stopped and reaped afterwards."""
    meteor = Meteor()
    process = meteor.meteor_p
    try:
        score = meteor.compute_score(refs, hyps)[0]
    except (OSError, ValueError):  # the process died: a broken pipe, or an empty line where a number was due
        score = None
    finally:
        process.kill()
        stderr = process.communicate()[1].decode("utf-8", "replace").strip().splitlines()
        if meteor.lock.locked():
            meteor.lock.release()
    if score is None:
        log(f"METEOR: skipped, its Java process failed ({stderr[-1] if stderr else 'no message'})")
    return score


def caption_scores(
    hyps: dict[str, str], refs: dict[str, list[str]], log: Callable[[str], None] = print
) -> dict[str, float]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr (x100) of one hypothesis per image against its references.

    `hyps` and `refs` are keyed by image (same keys). METEOR is missing from the result when Java is.
    CIDEr's idf comes from the references of the images scored, so it needs more than one image.
    """
    if not hyps:
        raise SeqattnError("no hypotheses to score")
    if hyps.keys() != refs.keys():
        missing = sorted(set(hyps) ^ set(refs))
        raise SeqattnError(
            f"{len(missing)} images have a hypothesis or references but not both (first: {missing[0]}); "
            "give references for exactly the images captioned"
        )
    if any(not r for r in refs.values()):
        raise SeqattnError(f"image {next(k for k, r in refs.items() if not r)}: no reference captions")
    keys = list(hyps)
    texts = [hyps[k] for k in keys] + [r for k in keys for r in refs[k]]
    java = shutil.which("java") is not None
    if not java:
        log("Java not found: captions tokenised in Python (PTB-like) and METEOR skipped; "
            "install a JRE (e.g. default-jre-headless) for the official scores")
    tokens = iter(ptb_tokenize(texts) if java else [python_tokenize(t) for t in texts])
    res = {k: [next(tokens)] for k in keys}
    gts = {k: [next(tokens) for _ in refs[k]] for k in keys}

    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores = {f"BLEU-{n}": b for n, b in enumerate(bleu, start=1)}
    meteor = _meteor(gts, res, log) if java else None
    if meteor is not None:
        scores["METEOR"] = meteor
    scores["ROUGE-L"] = Rouge().compute_score(gts, res)[0]
    scores["CIDEr"] = Cider().compute_score(gts, res)[0]
    log("SPICE: skipped (it downloads Stanford CoreNLP on first use, which fails offline)")
    return {name: 100 * float(value) for name, value in scores.items()}


def cider(hyps: list[str], refs: list[list[str]]) -> float:
    """CIDEr (x100) of one hypothesis per image against that image's references, as caption_scores
    computes it but always tokenised in Python (`python_tokenize`): no Java process, the same score on
    every machine; captioning validates by it (captions.valid_metric: cider). The idf comes from the
    references given, so it needs more than one image."""
    res = {i: [python_tokenize(h)] for i, h in enumerate(hyps)}
    gts = {i: [python_tokenize(r) for r in image_refs] for i, image_refs in enumerate(refs)}
    return 100 * float(Cider().compute_score(gts, res)[0])


def image_id(path: str | Path) -> int | str:
    """An image's id in results files: COCO's number (COCO_val2014_000000391895.jpg and
    000000391895.jpg -> 391895, as COCO results use), else the name without suffix (Flickr8k)."""
    stem = Path(path).stem
    coco = re.fullmatch(r"(?:COCO_[a-z]+\d*_)?(\d+)", stem)
    return int(coco.group(1)) if coco else stem


def read_caption_results(path: Path) -> dict[str, str]:
    """Captions by image id (as str) from `seqattn caption` JSONL ({"image", "caption"} a line) or a COCO
    results JSON ([{"image_id", "caption"}, ...])."""
    path = Path(path)
    if not path.is_file():
        raise SeqattnError(f"{path}: caption results not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            return {str(image_id(r["image"])): r["caption"] for r in rows}
        return {str(r["image_id"]): r["caption"] for r in json.loads(text)}
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise SeqattnError(
            f"{path}: not caption results ({type(err).__name__}: {err}); give JSONL lines with image and caption, "
            "or a COCO results JSON list of image_id and caption"
        ) from None
