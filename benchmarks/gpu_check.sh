#!/usr/bin/env bash
# The GPU path, checked in one go on one GPU machine (about 7 minutes on an H200):
#   bash benchmarks/gpu_check.sh [OUT]          (default OUT: runs/gpu_check)
# Logs and JSON figures: OUT/logs.tgz; the trained model: OUT/model/ (cat model.pt.part* > model.pt).
# 1. the machine: GPU, driver, torch, the measured fp32 / tf32 / bf16 / fp16 matmul peaks;
# 2. the test suite with CUDA visible (models, search and trainer pick cuda where a test says
#    device auto), beside 3.: its failures are rerun one at a time to tell them from parallelism;
# 3. a pre-norm Transformer (recipes/vaswani2017/transformer.yaml, model.norm=pre) trained in bf16
#    for TRAIN_MINUTES, then test2016 BLEU with beam 5; the model is left in OUT/model;
# 4. benchmarks/nmt_speed.py on that model: SPEED_STEPS timed bf16 and fp16 training updates of
#    SPEED_TOKENS target tokens (tokens/s, MFU against the measured peak of an 8192^2 matmul), and
#    greedy and beam-5 decoding of the 1,000 test2016 sentences in batches of 64;
# 5. data parallelism with nccl: one process per GPU under torchrun; two processes on one GPU
#    are refused with seqattn's message (NCCL does not put two ranks on one device);
# 6. the peers: CTranslate2's CUDA build loads cuBLAS 12 (libcublas.so.12) at run time, so it runs
#    only where that library is present; the check says whether it is.
# Data: $SEQATTN_DATA_ROOT (default ../shared/data). Python: $PYTHON (default python3), with
# seqattn's requirements importable (PYTHONPATH=. works; nothing is installed here).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-runs/gpu_check}}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
TRAIN_MINUTES=${TRAIN_MINUTES:-1.5}
SPEED_STEPS=${SPEED_STEPS:-200}
SPEED_TOKENS=${SPEED_TOKENS:-16384}
SENTENCES=${SENTENCES:-1000}
PEAK_N=${PEAK_N:-8192}
TEST_WORKERS=${TEST_WORKERS:-6}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d); RUN=$WORK/transformer; LOGS=$OUT/logs
mkdir -p "$LOGS"  # packed into one file at the end, also when stopped: logs/*.log, speed_*.json
trap 'tar -czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$LOGS"' EXIT; trap 'exit 143' TERM INT
RECIPE=(recipes/vaswani2017/transformer.yaml model.norm=pre train.device=$DEVICE)
step() { echo "== $(date +%T) $*"; }
seqattn() { $PYTHON cli.py "$@"; }

step "1. machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
  $PYTHON - "$DEVICE" "$PEAK_N" <<'EOF'
import sys, torch
from benchmarks.nmt_speed import cpu_model, matmul_peak
device, n = torch.device(sys.argv[1]), int(sys.argv[2])
print(f"cpu {cpu_model()}, torch {torch.__version__}, cuda {torch.version.cuda}, cudnn {torch.backends.cudnn.version()}")
if device.type == "cuda":
    print(f"gpu {torch.cuda.get_device_name(device)}, {torch.cuda.get_device_properties(device).total_memory / 2**30:.0f} GiB")
for name, precision, tf32 in (("fp32", "fp32", False), ("tf32", "fp32", True), ("bf16", "bf16", False),
                              ("fp16", "fp16", False)):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    print(f"matmul peak {name} {n}^2: {matmul_peak(device, precision, n) / 1e12:.1f} TFLOP/s")
torch.backends.cuda.matmul.allow_tf32 = False
EOF
} 2>&1 | tee "$LOGS/machine.log"

step "2. test suite in $TEST_WORKERS processes (in the background, beside 3.; 0 skips it)"
# pytest-xdist spreads the files over TEST_WORKERS processes where it is installed; else they run in one
$PYTHON -c "import xdist" 2>/dev/null && PARALLEL=(-n "$TEST_WORKERS" --dist loadfile) || PARALLEL=()
[ "$TEST_WORKERS" = 0 ] || ( timeout 330 $PYTHON -m pytest -q "${PARALLEL[@]}" -o cache_dir="$WORK/pytest-cache" \
      -W ignore::DeprecationWarning > "$LOGS/tests.log" 2>&1
  echo "exit status $?" >> "$LOGS/tests.log"
  timeout 120 $PYTHON -m pytest -q --lf --last-failed-no-failures none -o cache_dir="$WORK/pytest-cache" \
      > "$LOGS/tests_rerun.log" 2>&1
  echo "exit status $?" >> "$LOGS/tests_rerun.log" ) &
TESTS=$!

step "3. train a pre-norm Transformer in bf16 for $TRAIN_MINUTES minutes"
seqattn train "${RECIPE[@]}" out_dir=$RUN train.precision=bf16 train.max_minutes=$TRAIN_MINUTES \
    train.valid_every=400 train.valid_max_sentences=500 train.patience=0 > "$LOGS/train.log" 2>&1
tail -n 3 "$LOGS/train.log"
seqattn translate -c $RUN/best.pt --split test --output $RUN/test.hyp --device $DEVICE 2>&1 \
    | tee "$LOGS/translate.log" | grep -E "BLEU|signature|sentences/s" || tail -n 5 "$LOGS/translate.log"
mkdir -p "$OUT/model"
seqattn average -c $RUN/best.pt -o $WORK/model/model.pt > /dev/null \
    && cp $WORK/model/*.model "$OUT/model/" && split -b 15M -d $WORK/model/model.pt "$OUT/model/model.pt.part"

step "wait for the test suite"
wait $TESTS
[ "$TEST_WORKERS" = 0 ] || { grep -E "passed|failed|error" "$LOGS/tests.log" | tail -n 3; tail -n 3 "$LOGS/tests_rerun.log"; }

step "4. training and decoding speed (bf16, fp16)"
for precision in bf16 fp16; do
  mkdir -p $WORK/speed-$precision && cp $RUN/*.model $WORK/speed-$precision/
  timeout 150 $PYTHON benchmarks/nmt_speed.py "${RECIPE[@]}" out_dir=$WORK/speed-$precision train.precision=$precision \
      train.batch_tokens=$SPEED_TOKENS --warmup 20 --steps "$SPEED_STEPS" --sentences "$SENTENCES" \
      --peak-n "$PEAK_N" --checkpoint $RUN/best.pt --json "$LOGS/speed_$precision.json" \
      > "$LOGS/speed_$precision.log" 2>&1
  grep -E "matmul_peak|train_tgt_tokens|train_mfu|beam[15]_(bleu|sentences_per_s|mfu)|cuda_peak" "$LOGS/speed_$precision.log" \
      || tail -n 5 "$LOGS/speed_$precision.log"
done

step "5. data parallelism with nccl"
ddp() {  # processes, log
  timeout 90 $PYTHON -m torch.distributed.run --standalone --nproc_per_node "$1" cli.py train "${RECIPE[@]}" \
      out_dir=$WORK/ddp$1 train.precision=bf16 train.max_steps=100 train.valid_every=100 \
      train.valid_max_sentences=100 train.log_every=50 > "$2" 2>&1
  echo "exit status $?" >> "$2"
}
mkdir -p $WORK/ddp1 $WORK/ddp2 && cp $RUN/*.model $WORK/ddp1/ && cp $RUN/*.model $WORK/ddp2/
ddp 1 "$LOGS/ddp_1proc.log"; grep -E "parameters on|data parallel|step 100|exit status" "$LOGS/ddp_1proc.log"
ddp 2 "$LOGS/ddp_2proc.log"; grep -E "^error|exit status" "$LOGS/ddp_2proc.log" | sort -u

step "6. peers"
{ ldconfig -p | grep -E "libcublas\.so\.[0-9]+ " || echo "no cuBLAS in the linker cache"
  find / -xdev -name "libcublas.so.12*" 2>/dev/null | head -n 3
  $PYTHON -c "import ctranslate2; print('ctranslate2', ctranslate2.__version__, 'cuda devices', ctranslate2.get_cuda_device_count())" 2>&1 | tail -n 1
} | tee "$LOGS/peers.log"
step "done"
