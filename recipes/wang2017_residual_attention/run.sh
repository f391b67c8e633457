#!/usr/bin/env bash
# Train the CIFAR Residual Attention Network as a CIFAR-10 classifier with attention residual
# learning, (1 + M(x)) T(x), and with the naive M(x) T(x) (10 minutes each on 2 CPU threads), then
# print a table of test accuracy, parameters and minutes (from each run's summary.json).
#   bash recipes/wang2017_residual_attention/run.sh [OVERRIDE ...]   (RUNS=folder puts the runs elsewhere)
set -euo pipefail
cd "$(dirname "$0")/../.."
SEQATTN=${SEQATTN:-.venv/bin/seqattn}
PYTHON=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-runs/wang2017_residual_attention}
for model in attention naive; do
  out=$RUNS/$model
  $SEQATTN train recipes/wang2017_residual_attention/attention.yaml out_dir=$out \
    $([ $model = naive ] && echo backbone.attention_residual=false) "$@" $([ -f $out/last.pt ] && echo --resume)
done
$PYTHON recipes/classify_table.py $RUNS/attention $RUNS/naive
