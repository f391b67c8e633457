#!/usr/bin/env bash
# Train ResNet-18 and SE-ResNet-18 as CIFAR-10 classifiers (10 minutes each on 2 CPU threads), then
# print a table of test accuracy, parameters and minutes (from each run's classify.jsonl).
#   bash recipes/hu2018_senet/run.sh [OVERRIDE ...]   (RUNS=folder puts the runs elsewhere)
set -euo pipefail
cd "$(dirname "$0")/../.."
SEQATTN=${SEQATTN:-.venv/bin/seqattn}
PYTHON=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-runs/hu2018_senet}
for model in resnet se_resnet; do
  out=$RUNS/$model
  $SEQATTN classify recipes/hu2018_senet/$model.yaml out_dir=$out "$@" $([ -f $out/last.pt ] && echo --resume)
done
$PYTHON - $RUNS/resnet $RUNS/se_resnet <<'TABLE'
import json, sys
print("| run | backbone | test accuracy | test images | parameters | epochs | minutes |\n|---|---|---|---|---|---|---|")
for out in sys.argv[1:]:
    s = [r for r in map(json.loads, open(f"{out}/classify.jsonl")) if r.get("summary")][-1]
    print(f"| {out.rsplit('/', 1)[-1]} | {s['backbone']} | {100 * s['test_accuracy']:.2f}% | {s['test_images']} "
          f"| {s['parameters'] / 1e6:.2f} M | {s['epochs']:.2f} | {s['minutes']:.1f} |")
TABLE
