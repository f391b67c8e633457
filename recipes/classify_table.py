"""The table of `seqattn classify` runs that recipes/hu2018_senet/run.sh and
recipes/wang2017_residual_attention/run.sh print: each run's last summary in its classify.jsonl.

    python recipes/classify_table.py RUN_DIR [RUN_DIR ...]
"""
import json
import sys
from pathlib import Path


def summary(out: Path) -> dict:
    records = [json.loads(line) for line in (out / "classify.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r for r in records if r.get("summary")][-1]


if __name__ == "__main__":
    print("| run | backbone | test accuracy | test images | parameters | epochs | minutes |\n|---|---|---|---|---|---|---|")
    for out in map(Path, sys.argv[1:]):
        s = summary(out)
        print(f"| {out.name} | {s['backbone']} | {100 * s['test_accuracy']:.2f}% | {s['test_images']} "
              f"| {s['parameters'] / 1e6:.2f} M | {s['epochs']:.2f} | {s['minutes']:.1f} |")
