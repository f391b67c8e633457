# seqattn: `make demo` sets everything up and runs the main job; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SEQATTN := $(BIN)/seqattn
DEMO   ?= runs/demo
DEMO_MINUTES ?= 10

.PHONY: install demo test bench bench-peers clean-demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# RNNsearch on Multi30k En->De for 10 minutes, then beam search on test2016 (sacreBLEU with its
# signature) and attention heatmaps of five test sentences. Running it again resumes the run.
demo: install
	$(SEQATTN) train recipes/bahdanau2015/rnnsearch.yaml out_dir=$(DEMO) train.max_minutes=$(DEMO_MINUTES) \
		train.valid_every=200 train.valid_max_sentences=300 $(if $(wildcard $(DEMO)/last.pt),--resume)
	$(SEQATTN) translate --checkpoint $(DEMO)/best.pt --split test --output $(DEMO)/test.hyp \
		--attention-dir $(DEMO)/attention --attention-max 5

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/nmt_speed.py recipes/bahdanau2015/rnnsearch.yaml

# seqattn, OpenNMT-py and CTranslate2 on one pre-norm Transformer (trained here for 15 minutes unless
# CHECKPOINT=path/best.pt), one table: training and decoding speed, BLEU, MFU, memory (benchmarks/peers).
bench-peers: install
	CHECKPOINT='$(CHECKPOINT)' BIN='$(BIN)' bash benchmarks/peers/bench_peers.sh

clean-demo:
	rm -rf $(DEMO)
