#!/usr/bin/env bash
# Train the CIFAR Residual Attention Network as a CIFAR-10 classifier with attention residual
# learning, (1 + M(x)) T(x), and with the naive M(x) T(x) (10 minutes each on 2 CPU threads), then
# print a table of test accuracy, parameters and minutes (from each run's classify.jsonl).
#   bash recipes/wang2017_residual_attention/run.sh [OVERRIDE ...]   (RUNS=folder puts the runs elsewhere)
set -euo pipefail
cd "$(dirname "$0")/../.."
SEQATTN=${SEQATTN:-.venv/bin/seqattn}
PYTHON=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-runs/wang2017_residual_attention}
for model in attention naive; do
  out=$RUNS/$model
  $SEQATTN classify recipes/wang2017_residual_attention/attention.yaml out_dir=$out \
    $([ $model = naive ] && echo backbone.attention_residual=false) "$@" $([ -f $out/last.pt ] && echo --resume)
done
$PYTHON - $RUNS/attention $RUNS/naive <<'TABLE'
import json, sys
print("| run | backbone | test accuracy | test images | parameters | epochs | minutes |\n|---|---|---|---|---|---|---|")
for out in sys.argv[1:]:
    s = [r for r in map(json.loads, open(f"{out}/classify.jsonl")) if r.get("summary")][-1]
    print(f"| {out.rsplit('/', 1)[-1]} | {s['backbone']} | {100 * s['test_accuracy']:.2f}% | {s['test_images']} "
          f"| {s['parameters'] / 1e6:.2f} M | {s['epochs']:.2f} | {s['minutes']:.1f} |")
TABLE
