#!/usr/bin/env bash
# Train RNNencdec and RNNsearch on Multi30k En->De (60 minutes each), decode test2016 with
# beam 5 and score it: sacreBLEU and chrF, and BLEU by source-length bucket (Figure 2).
#   bash recipes/bahdanau2015/run.sh [rnnencdec|rnnsearch ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
SEQATTN=${SEQATTN:-.venv/bin/seqattn}
DATA=${SEQATTN_DATA_ROOT:-../shared/data}/multi30k
models=("$@")
[ $# -gt 0 ] || models=(rnnencdec rnnsearch)
for model in "${models[@]}"; do
  out=runs/bahdanau2015/$model
  $SEQATTN train recipes/bahdanau2015/$model.yaml train.progress=false $([ -f $out/last.pt ] && echo --resume)
  $SEQATTN translate -c $out/best.pt --split test -o $out/test.hyp
  $SEQATTN evaluate --hyp $out/test.hyp --ref $DATA/test_2016_flickr.de --src $DATA/test_2016_flickr.en | tee $out/test.scores
done
