#!/usr/bin/env bash
# The alignment table: eflomal on Multi30k + the gold sentences, then every attention model trained
# on Multi30k En->De and En->Fr (and on Multi30k + the gold pairs), each aligning the gold sentences
# by its attention (AER on RWTH De-En for En->De, Hansards En-Fr for En->Fr), translating them
# (BLEU) and test2016 (BLEU), and the table of it all:
#   bash recipes/alignment/run.sh [MODEL ...]         (default: every model below)
# Environment: MINUTES training budget per model (60), LANGS target languages (de fr), SETS training
# data (multi30k gold: Multi30k alone, Multi30k + the gold pairs), RUNS output folder (runs/alignment),
# OVERRIDES more overrides for every model (e.g. train.threads=2).
# Run again, it resumes: eflomal is skipped once done, every model resumes from its last.pt (a run that
# has spent its budget trains no further) and is aligned and scored again.
set -euo pipefail
cd "$(dirname "$0")/../.."
SEQATTN=${SEQATTN:-.venv/bin/seqattn}
PYTHON=${PYTHON:-.venv/bin/python}
MINUTES=${MINUTES:-60}
LANGS=${LANGS:-de fr}
SETS=${SETS:-multi30k gold}
RUNS=${RUNS:-runs/alignment}
OVERRIDES=${OVERRIDES:-}
DATA=${SEQATTN_DATA_ROOT:-../shared/data}
declare -A RECIPE=(
  [rnnsearch]="bahdanau2015/rnnsearch.yaml"
  [rnnsearch-guided]="bahdanau2015/rnnsearch.yaml train.alignment_weight=1.0"
  [transformer]="vaswani2017/transformer.yaml"
  [transformer-guided]="vaswani2017/transformer.yaml train.alignment_weight=0.05 model.attention_layer=-2 model.attention_head=0"
  [luong-global-dot]="luong2015/luong.yaml model.score=dot"
  [luong-global-general]="luong2015/luong.yaml model.score=general"
  [luong-global-concat]="luong2015/luong.yaml model.score=concat"
  [luong-local-m]="luong2015/luong.yaml model.score=general model.alignment=local-m"
  [luong-local-p]="luong2015/luong.yaml model.score=general model.alignment=local-p"
  [luong-global-dot-reverse]="luong2015/luong.yaml model.score=dot model.reverse_source=true"
  [luong-global-general-reverse]="luong2015/luong.yaml model.score=general model.reverse_source=true"
  [luong-global-concat-reverse]="luong2015/luong.yaml model.score=concat model.reverse_source=true"
  [luong-local-m-reverse]="luong2015/luong.yaml model.score=general model.alignment=local-m model.reverse_source=true"
  [luong-local-p-reverse]="luong2015/luong.yaml model.score=general model.alignment=local-p model.reverse_source=true"
)
models=("$@")
[ $# -gt 0 ] || models=(rnnsearch rnnsearch-guided transformer transformer-guided luong-global-dot luong-global-general
  luong-global-concat luong-local-m luong-local-p luong-global-dot-reverse luong-global-general-reverse
  luong-global-concat-reverse luong-local-m-reverse luong-local-p-reverse)

# The statistical aligner and, per target language, the gold sentences as UTF-8 src/tgt of an En->X model,
# the gold links' file and how evaluate reads it, and Multi30k + the gold pairs as a corpus folder.
# Files are written whole and then renamed, so that a second run.sh beside this one never reads half a file.
declare -A PAIR=([de]=de-en [fr]=en-fr) GOLD=() GOLD_OPTS=()
write() { cat > "$1.$$" && mv -f "$1.$$" "$1"; }
for lang in $LANGS; do
  pair=${PAIR[$lang]}
  [ -f $RUNS/eflomal/$pair/scores.json ] || $PYTHON recipes/alignment/eflomal_baseline.py $pair $RUNS/eflomal/$pair
  gold=$RUNS/gold/$lang corpus=$RUNS/corpus/$lang
  mkdir -p $gold $corpus
  if [ $lang = de ]; then
    rwth=$DATA/alignments/de-en-rwth
    head -n 508 $rwth/en | iconv -f latin1 -t utf-8 | write $gold/src
    head -n 508 $rwth/de | iconv -f latin1 -t utf-8 | write $gold/tgt
    GOLD[$lang]=$rwth/alignmentDeEn.talp GOLD_OPTS[$lang]="--reverse-gold --encoding latin-1"
  else
    hansards=$DATA/alignments/en-fr-hansards
    sed 's/ *||| .*//' $hansards/enfr.src-tgt | write $gold/src
    sed 's/.* ||| *//; s/ *$//' $hansards/enfr.src-tgt | write $gold/tgt
    GOLD[$lang]=$hansards/enfr.gold GOLD_OPTS[$lang]=""
  fi
  for side in en:src $lang:tgt; do
    cat $DATA/multi30k/train.${side%:*} $gold/${side#*:} | write $corpus/train.${side%:*}
    for split in val test_2016_flickr; do ln -sfT "$(realpath $DATA/multi30k/$split.${side%:*})" $corpus/$split.${side%:*}.$$
      mv -fT $corpus/$split.${side%:*}.$$ $corpus/$split.${side%:*}; done
  done
done

for set in $SETS; do
  for lang in $LANGS; do
    pair=${PAIR[$lang]} gold=$RUNS/gold/$lang
    data="data.tgt=$lang" links=$RUNS/eflomal/$pair/train.en-$lang.align
    [ $set = multi30k ] || { data="$data data.root=$RUNS/corpus data.corpus=$lang"; links=$RUNS/eflomal/$pair/train+gold.en-$lang.align; }
    for model in "${models[@]}"; do
      out=$RUNS/$set/$lang/$model
      read -r recipe overrides <<< "${RECIPE[$model]}"
      [[ $model != *-guided ]] || overrides="$overrides train.guided_alignment=$links"
      # shellcheck disable=SC2086
      $SEQATTN train recipes/$recipe out_dir=$out $data $overrides $OVERRIDES train.max_minutes=$MINUTES train.progress=false \
        $([ -f $out/last.pt ] && echo --resume)
      $SEQATTN translate -c $out/best.pt --split test -o $out/test.hyp
      $SEQATTN evaluate --hyp $out/test.hyp --ref $DATA/multi30k/test_2016_flickr.$lang > $out/test.scores
      $SEQATTN translate -c $out/best.pt -i $gold/src -o $out/gold.hyp
      $SEQATTN evaluate --hyp $out/gold.hyp --ref $gold/tgt > $out/gold.scores
      # the model's own attention (for a guided Transformer: the guided head), then every Transformer layer's head average
      layers=$($PYTHON -c "import yaml, sys; c = yaml.safe_load(open(sys.argv[1])); print(c['model']['decoder_layers'] if c['model']['arch'] == 'transformer' else '')" $out/config.yaml)
      for choice in default $(seq 0 $((${layers:-0} - 1))); do
        [ $choice = default ] && options="" || options="--layer $choice --head -1"
        # shellcheck disable=SC2086
        $SEQATTN align -c $out/best.pt --src $gold/src --tgt $gold/tgt $options -o $out/gold.$choice.align
        # shellcheck disable=SC2086
        $SEQATTN evaluate --hyp $out/gold.$choice.align --alignments ${GOLD[$lang]} ${GOLD_OPTS[$lang]} > $out/aer.$choice.txt
      done
    done
  done
done
$PYTHON recipes/alignment_table.py $RUNS | tee $RUNS/table.md
