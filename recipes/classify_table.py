"""The table of classification runs (`seqattn train` of a classifier recipe) that
recipes/hu2018_senet/run.sh and recipes/wang2017_residual_attention/run.sh print: each run's
summary.json and the backbone of its config.yaml.

    python recipes/classify_table.py RUN_DIR [RUN_DIR ...]
"""
import json
import sys
from pathlib import Path

import yaml

if __name__ == "__main__":
    print("| run | backbone | test accuracy | test images | parameters | epochs | minutes |\n|---|---|---|---|---|---|---|")
    for out in map(Path, sys.argv[1:]):
        s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        backbone = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))["backbone"]["name"]
        print(f"| {out.name} | {backbone} | {100 * s['valid_accuracy']:.2f}% | {s['valid_size']} "
              f"| {s['parameters'] / 1e6:.2f} M | {s['epochs']:.2f} | {s['minutes']:.1f} |")
