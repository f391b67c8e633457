#!/usr/bin/env bash
# seqattn, OpenNMT-py and CTranslate2 on one pre-norm Transformer, one after the other, in one table:
#   make bench-peers [CHECKPOINT=runs/x/best.pt] [BF16=0|1] [PRECISION=fp32|bf16] [THREADS=2] [TRAIN_MINUTES=15] [STEPS=60] [WARMUP=10] [SENTENCES=1000] [ROUNDS=3]
# 1. the peers' venv (setup.sh), unless it is there;
# 2. a pre-norm Transformer of recipes/vaswani2017 trained for TRAIN_MINUTES (kept in WORK/model and
#    reused), unless CHECKPOINT names one (best.pt with its spm.model and config.yaml beside it); in bf16
#    where a bf16 matmul outruns an fp32 one (train_precision.py; PRECISION=fp32|bf16 overrides), else in fp32;
# 3. seqattn (benchmarks/nmt_speed.py): training in fp32 and in bf16 (target tokens/s, MFU), decoding
#    the checkpoint in fp32, bf16 and int8 (beam 5, sentences/s, BLEU); bf16 only where the CPU has
#    avx512_bf16 or amx_bf16 (BF16=0|1 overrides);
# 4. OpenNMT-py (training fp32 on the same data, decoding) and CTranslate2 (float32, int8) on the same
#    model (benchmarks/peers/onmt_speed.py), which prints the machine and the table;
# 5. ROUNDS (3) rounds of seqattn int8 against CTranslate2 int8 decoding in alternating processes
#    (benchmarks/peers/decode_rounds.py, in WORK/decode_rounds.log; ROUNDS=0 skips it).
# Figures and logs go to WORK (runs/bench-peers). About 30 minutes on 2 cores with the defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
WORK=${WORK:-runs/bench-peers}
THREADS=${THREADS:-2} TRAIN_MINUTES=${TRAIN_MINUTES:-15} STEPS=${STEPS:-60} WARMUP=${WARMUP:-10} SENTENCES=${SENTENCES:-1000} ROUNDS=${ROUNDS:-3}
CHECKPOINT=${CHECKPOINT:-}
# bf16 is timed only where the CPU computes it (avx512_bf16 or amx_bf16); elsewhere torch emulates it (18 bf16
# updates of this Transformer in 15 minutes on a 2-core AVX2 EPYC). The model trains in bf16 only where bf16
# matmuls are also the faster ones: an Intel Xeon with avx512_bf16 and no AMX ran them at half its fp32 speed
BF16=${BF16:-$(grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo 1 || echo 0)}
[ "$BF16" = 1 ] && DECODE=fp32,bf16,int8 || DECODE=fp32,int8
[ "$BF16" = 1 ] || echo "bench_peers: this CPU has no avx512_bf16 or amx_bf16: the model trains in fp32, bf16 is not timed" >&2
train_precision() { if [ "$BF16" = 1 ]; then "$BIN/python" benchmarks/peers/train_precision.py --threads "$THREADS"; else echo fp32; fi; }
mkdir -p "$WORK"
[ -x benchmarks/peers/.venv/bin/python ] || bash benchmarks/peers/setup.sh
if [ -z "$CHECKPOINT" ]; then
  CHECKPOINT=$WORK/model/best.pt
  [ -f "$CHECKPOINT" ] || "$BIN/seqattn" train recipes/vaswani2017/transformer.yaml out_dir="$WORK/model" model.norm=pre \
    train.precision="${PRECISION:-$(train_precision)}" train.threads="$THREADS" train.max_minutes="$TRAIN_MINUTES" train.progress=false
fi
[ -f "$CHECKPOINT" ] || { echo "bench_peers: CHECKPOINT $CHECKPOINT: not found" >&2; exit 2; }
speed=("$BIN/python" benchmarks/nmt_speed.py recipes/vaswani2017/transformer.yaml model.norm=pre train.threads="$THREADS"
       train.batch_tokens=4096 out_dir="$WORK/seqattn" --warmup "$WARMUP" --steps "$STEPS")
"${speed[@]}" train.precision=fp32 --sentences "$SENTENCES" --decode-precisions "$DECODE" --checkpoint "$CHECKPOINT" \
  --json "$WORK/seqattn_fp32.json" > "$WORK/seqattn_fp32.log"
ours=(--ours "$WORK/seqattn_fp32.json")
if [ "$BF16" = 1 ]; then
  "${speed[@]}" train.precision=bf16 --sentences 0 --json "$WORK/seqattn_bf16.json" > "$WORK/seqattn_bf16.log"
  ours+=(--ours "$WORK/seqattn_bf16.json")
fi
benchmarks/peers/.venv/bin/python benchmarks/peers/onmt_speed.py --warmup "$WARMUP" --steps "$STEPS" --sentences "$SENTENCES" \
  --threads "$THREADS" --ct2-int8 --spm "$(dirname "$CHECKPOINT")/spm.model" --seqattn-checkpoint "$CHECKPOINT" \
  --seqattn "$BIN/seqattn" "${ours[@]}" \
  --work "$WORK/peers" --json "$WORK/peers.json"
[ "$ROUNDS" = 0 ] || "$BIN/python" benchmarks/peers/decode_rounds.py "$CHECKPOINT" --work "$WORK/peers" --rounds "$ROUNDS" \
  --threads "$THREADS" --sentences "$SENTENCES" | tee "$WORK/decode_rounds.log"
