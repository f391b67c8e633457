"""The table of recipes/alignment/run.sh: AER of eflomal and of every model's attention on the gold
sentences (RWTH De-En aligned by the En->De models, Hansards En-Fr by the En->Fr models), with each
model's BLEU on the gold sentences and on test2016, for models trained on Multi30k and on Multi30k +
the gold pairs. A Transformer has a row per decoder layer (mean of its heads) and, when guided, one for
the guided head (its alpha: model.attention_layer / attention_head), and each run's updates (its
summary.json). Missing results print as "-".

    python recipes/alignment_table.py RUNS      (RUNS/eflomal/PAIR/scores.json, RUNS/SET/LANG/MODEL/...)
"""
import json
import re
import sys
from pathlib import Path

LANGS = ("de", "fr")
PAIRS = {"de": "de-en", "fr": "en-fr"}
SETS = {"multi30k": "Multi30k", "gold": "Multi30k + gold pairs"}
NUMBER = re.compile(r"(?:AER|BLEU =) ([\d.]+)")


def first_number(path: Path) -> str:
    """The AER (of `AER x% (...)`) or BLEU (of `BLEU = x ...`) in a file written by `seqattn evaluate`; - if none."""
    if not path.is_file():
        return "-"
    found = NUMBER.search(path.read_text(encoding="utf-8"))
    return found.group(1) if found else "-"


def updates(run: Path) -> str:
    """The updates a run made (`step` of its summary.json, thousands separated); - if it has none."""
    summary = run / "summary.json"
    return f"{json.loads(summary.read_text(encoding='utf-8'))['step']:,}" if summary.is_file() else "-"


def attention_rows(run: Path) -> list[tuple[str, str]]:
    """(label, AER file name) of a run: its alpha for RNNs, each layer's head mean (and a guided head) for a Transformer."""
    layers = sorted(int(p.name.split(".")[1]) for p in run.glob("aer.*.txt") if p.name.split(".")[1].isdigit())
    if not layers:
        return [("alpha", "aer.default.txt")]
    rows = [(f"layer {layer}, mean of heads", f"aer.{layer}.txt") for layer in layers]
    return rows + ([("guided head", "aer.default.txt")] if run.name.endswith("-guided") else [])


def main(root: Path) -> None:
    print("| system | trained on | updates De / Fr | attention | RWTH AER % (En->De) | Hansards AER % (En->Fr) | "
          "BLEU gold De | BLEU gold Fr | BLEU test2016 De | BLEU test2016 Fr |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in ("fwd", "rev", "intersection", "grow-diag-final"):
        cells = []
        for lang in LANGS:
            scores = root / "eflomal" / PAIRS[lang] / "scores.json"
            cells.append(f"{json.loads(scores.read_text())[name]['aer']:.1f}" if scores.is_file() else "-")
        print(f"| eflomal {name} | Multi30k + gold sentences | - | - | {cells[0]} | {cells[1]} | - | - | - | - |")
    models = sorted({run.name for set_name in SETS for lang in LANGS for run in (root / set_name / lang).glob("*")
                     if run.is_dir()})
    for set_name, set_label in SETS.items():
        for model in models:
            runs = {lang: root / set_name / lang / model for lang in LANGS}
            steps = " / ".join(updates(runs[lang]) for lang in LANGS)
            labels = list(dict.fromkeys(row for run in runs.values() if run.is_dir() for row in attention_rows(run)))
            for label, file in labels:
                aer = [first_number(runs[lang] / file) for lang in LANGS]
                bleu = [first_number(runs[lang] / name) for name in ("gold.scores", "test.scores") for lang in LANGS]
                print(f"| {model} | {set_label} | {steps} | {label} | {' | '.join(aer)} | {' | '.join(bleu)} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
