#!/usr/bin/env bash
# Create benchmarks/peers/.venv with OpenNMT-py 3.5.1 and CTranslate2 4 for onmt_speed.py:
#   bash benchmarks/peers/setup.sh
# OpenNMT-py 3.5.1 asks for torch>=2.1,<2.3; we install it with --no-deps on the torch that
# seqattn uses (TORCH=torch==2.14.1, override to try another) and then its other requirements,
# so both sides run the same torch build. Nothing in OpenNMT-py is patched.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
TORCH=${TORCH:-torch==2.14.1}
run() { nice -n 19 ionice -c 3 "$@"; }
[ -x .venv/bin/python ] || run "$PYTHON" -m venv .venv
pip=".venv/bin/pip"
run $pip install --upgrade pip
run $pip install "$TORCH"
run $pip install --no-deps OpenNMT-py==3.5.1
run $pip install -r requirements.txt
run .venv/bin/python -c "import onmt, ctranslate2, torch; print('OpenNMT-py', onmt.__version__, '| ctranslate2', ctranslate2.__version__, '| torch', torch.__version__)"
