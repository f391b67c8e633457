#!/usr/bin/env bash
# Every Luong et al. 2015 variant, each also reading the source backwards (VARIANT-reverse), for
# 60 minutes each on Multi30k En->De, then test2016 with beam 5 and BLEU by source length:
#   bash recipes/luong2015/run.sh [VARIANT ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
SEQATTN=${SEQATTN:-.venv/bin/seqattn}
DATA=${SEQATTN_DATA_ROOT:-../shared/data}/multi30k
declare -A OVERRIDES=(
  [global-dot]="model.score=dot"
  [global-general]="model.score=general"
  [global-concat]="model.score=concat"
  [local-m]="model.score=general model.alignment=local-m"
  [local-p]="model.score=general model.alignment=local-p"
  [local-p-reverse]="model.score=general model.alignment=local-p model.reverse_source=true"
  [global-general-reverse]="model.score=general model.reverse_source=true"
  [global-dot-reverse]="model.score=dot model.reverse_source=true"
  [global-concat-reverse]="model.score=concat model.reverse_source=true"
  [local-m-reverse]="model.score=general model.alignment=local-m model.reverse_source=true"
)
variants=("$@")
[ $# -gt 0 ] || variants=(global-dot global-general global-concat local-m local-p local-p-reverse global-general-reverse global-dot-reverse
  global-concat-reverse local-m-reverse)
for variant in "${variants[@]}"; do
  out=runs/luong2015/$variant
  # shellcheck disable=SC2086
  $SEQATTN train recipes/luong2015/luong.yaml out_dir=$out ${OVERRIDES[$variant]} train.progress=false \
    $([ -f $out/last.pt ] && echo --resume)
  $SEQATTN translate -c $out/best.pt --split test -o $out/test.hyp
  $SEQATTN evaluate --hyp $out/test.hyp --ref $DATA/test_2016_flickr.de --src $DATA/test_2016_flickr.en | tee $out/test.scores
done
