#!/usr/bin/env bash
# Every Luong et al. 2015 variant for MINUTES (default 60) each on Multi30k En->De, then test2016
# with beam 5 and BLEU by source length:  [MINUTES=N] bash recipes/luong2015/run.sh [VARIANT ...]
# A budget other than 60 minutes writes to runs/luong2015-<N>min/ and validates every 100 updates.
set -euo pipefail
cd "$(dirname "$0")/../.."
SEQATTN=${SEQATTN:-.venv/bin/seqattn}
DATA=${SEQATTN_DATA_ROOT:-../shared/data}/multi30k
MINUTES=${MINUTES:-60}
root=runs/luong2015 budget=""
[ "$MINUTES" = 60 ] || { root=runs/luong2015-${MINUTES}min; budget="train.max_minutes=$MINUTES train.valid_every=100"; }
declare -A OVERRIDES=(
  [global-dot]="model.score=dot"
  [global-general]="model.score=general"
  [global-concat]="model.score=concat"
  [local-m]="model.score=general model.alignment=local-m"
  [local-p]="model.score=general model.alignment=local-p"
)
variants=("$@")
[ $# -gt 0 ] || variants=(global-dot global-general global-concat local-m local-p)
for variant in "${variants[@]}"; do
  out=$root/$variant
  # shellcheck disable=SC2086
  $SEQATTN train recipes/luong2015/luong.yaml out_dir=$out ${OVERRIDES[$variant]} $budget train.progress=false \
    $([ -f $out/last.pt ] && echo --resume)
  $SEQATTN translate -c $out/best.pt --split test -o $out/test.hyp
  $SEQATTN evaluate --hyp $out/test.hyp --ref $DATA/test_2016_flickr.de --src $DATA/test_2016_flickr.en | tee $out/test.scores
done
