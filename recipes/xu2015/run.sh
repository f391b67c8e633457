#!/usr/bin/env bash
# Show, Attend and Tell on the shared Flickr8k sample: soft and hard attention on EfficientNet-Lite0
# (ImageNet weights), soft attention on the SE-ResNet-18 and the Residual Attention network of the
# CIFAR-10 backbone checks (run recipes/hu2018_senet and recipes/wang2017_residual_attention first),
# and the nearest-neighbour baseline; every system captions the dev images with beam 3 and is scored
# with BLEU-1..4, METEOR, ROUGE-L and CIDEr:   bash recipes/xu2015/run.sh [VARIANT ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
SEQATTN=${SEQATTN:-.venv/bin/seqattn}
DATA=$(cd "${SEQATTN_DATA_ROOT:-../shared/data}/flickr8k-1k" && pwd)  # absolute: list paths are relative to the list
RECIPE=recipes/xu2015/soft.yaml
CACHE=backbone.cache_dir=runs/xu2015/features  # one cache of CNN grids for all variants (keyed by the CNN's options)
declare -A OVERRIDES=(
  [soft]=""
  [hard]="model.attend=hard"
  [se]="backbone.name=se-resnet18 backbone.pretrained=runs/hu2018_senet/se_resnet/best.pt backbone.image_size=224 backbone.grid=7 train.max_minutes=10"
  [residual-attention]="backbone.name=attention-cifar backbone.pretrained=runs/wang2017_residual_attention/attention/best.pt backbone.image_size=112 backbone.grid=14 train.max_minutes=10"
)
variants=("$@")
[ $# -gt 0 ] || variants=(nearest-neighbour soft hard se residual-attention)
mkdir -p runs/xu2015
sed "s|^|$DATA/images/|" "$DATA/Flickr_8k.devImages.txt" > runs/xu2015/dev.txt
for variant in "${variants[@]}"; do
  out=runs/xu2015/$variant
  if [ "$variant" = nearest-neighbour ]; then
    $SEQATTN nn-baseline $RECIPE out_dir=$out $CACHE -o runs/xu2015/nearest-neighbour.jsonl
  else
    # shellcheck disable=SC2086
    $SEQATTN train $RECIPE out_dir=$out $CACHE ${OVERRIDES[$variant]} train.progress=false $([ -f $out/last.pt ] && echo --resume)
    $SEQATTN caption runs/xu2015/dev.txt -c $out/best.pt -o runs/xu2015/$variant.jsonl --attention-dir $out/attention --attention-max 5
  fi
  $SEQATTN evaluate --hyp runs/xu2015/$variant.jsonl --captions $RECIPE --split valid | tee runs/xu2015/$variant.scores
done
