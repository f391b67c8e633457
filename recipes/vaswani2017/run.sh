#!/usr/bin/env bash
# Train the Transformer for 60 minutes on Multi30k En->De, then decode test2016 with beam 5 and
# score it (sacreBLEU, chrF, BLEU by source length):  bash recipes/vaswani2017/run.sh [OVERRIDE ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
SEQATTN=${SEQATTN:-.venv/bin/seqattn}
DATA=${SEQATTN_DATA_ROOT:-../shared/data}/multi30k
out=runs/vaswani2017/transformer
$SEQATTN train recipes/vaswani2017/transformer.yaml train.progress=false "$@" $([ -f $out/last.pt ] && echo --resume)
$SEQATTN translate -c $out/best.pt --split test -o $out/test.hyp
$SEQATTN evaluate --hyp $out/test.hyp --ref $DATA/test_2016_flickr.de --src $DATA/test_2016_flickr.en | tee $out/test.scores
