#!/usr/bin/env bash
# Train ResNet-18 and SE-ResNet-18 as CIFAR-10 classifiers (10 minutes each on 2 CPU threads), then
# print a table of test accuracy, parameters and minutes (from each run's summary.json).
#   bash recipes/hu2018_senet/run.sh [OVERRIDE ...]   (RUNS=folder puts the runs elsewhere)
set -euo pipefail
cd "$(dirname "$0")/../.."
SEQATTN=${SEQATTN:-.venv/bin/seqattn}
PYTHON=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-runs/hu2018_senet}
for model in resnet se_resnet; do
  out=$RUNS/$model
  $SEQATTN train recipes/hu2018_senet/$model.yaml out_dir=$out "$@" $([ -f $out/last.pt ] && echo --resume)
done
$PYTHON recipes/classify_table.py $RUNS/resnet $RUNS/se_resnet
