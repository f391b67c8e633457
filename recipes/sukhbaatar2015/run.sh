#!/usr/bin/env bash
# Memory networks on bAbI en-10k: train per-task models (tasks 1-20 but 3, which has no training file
# here) and/or one joint model for every seed, answer each run's test questions, then print the table
# (recipes/babi_table.py: per-task error, mean and best over seeds, supporting-fact hits, minutes).
#   bash recipes/sukhbaatar2015/run.sh [per-task|joint|both] [SEED ...]     (default: both, seeds 1 2 3)
# OVERRIDES="train.max_minutes=3" adds overrides to every training (a time budget per run, say);
# TASKS="2 5 6" trains per-task models for those tasks only (default: every task with a training file).
# RECIPE=recipes/miller2016/kvmemnn runs KV-MemNN the same way (recipes/miller2016/run.sh does).
set -euo pipefail
cd "$(dirname "$0")/../.."
SEQATTN=${SEQATTN:-.venv/bin/seqattn}
PYTHON=${PYTHON:-.venv/bin/python}
RECIPE=${RECIPE:-recipes/sukhbaatar2015/memn2n}
RUNS=${RUNS:-runs/$(basename "$(dirname "$RECIPE")")}
mode=${1:-both}; shift || true
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
train_and_test() {  # out recipe overrides...
  local out=$1 recipe=$2; shift 2
  $SEQATTN train "$recipe" out_dir=$out train.seed=$seed "$@" ${OVERRIDES:-} $([ -f $out/last.pt ] && echo --resume) 2> >(tee -a $out.log >&2)
  $SEQATTN answer -c $out/best.pt --split test -o $out/test.answers --scores $out/test.json
}
for seed in "${seeds[@]}"; do
  if [ "$mode" != joint ]; then
    for task in ${TASKS:-1 2 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20}; do
      mkdir -p $RUNS/task$task; train_and_test $RUNS/task$task/seed$seed $RECIPE.yaml "babi.tasks=[$task]"
    done
  fi
  if [ "$mode" != per-task ]; then
    mkdir -p $RUNS/joint; train_and_test $RUNS/joint/seed$seed ${RECIPE}_joint.yaml
  fi
done
$PYTHON recipes/babi_table.py $RUNS
