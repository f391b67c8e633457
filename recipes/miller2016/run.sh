#!/usr/bin/env bash
# Key-value memory networks on bAbI en-10k, per task and joint, as recipes/sukhbaatar2015/run.sh:
#   bash recipes/miller2016/run.sh [per-task|joint|both] [SEED ...]
RECIPE=recipes/miller2016/kvmemnn exec bash "$(dirname "$0")/../sukhbaatar2015/run.sh" "$@"
