# Two commands: `make demo` and `make test`. Both create .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,dask]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m geoalign.demo --out demo_output

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf demo_output

# --- benchmarks (each writes PNG + JSON under benchmarks/results/) ---
.PHONY: bench-similarity-sine bench-similarity-digits bench-similarity-speed bench-similarity-topk bench-dataset bench-fetch
bench-similarity-sine: $(STAMP)
	$(BIN)/python -m benchmarks.similarity.sine_toy
bench-similarity-digits: $(STAMP)
	$(BIN)/python -m benchmarks.similarity.digits_enforcement
bench-similarity-speed: $(STAMP)
	$(BIN)/python -m benchmarks.similarity.speed
bench-similarity-topk: $(STAMP)
	$(BIN)/python -m benchmarks.similarity.speed --topk-only
bench-dataset: $(STAMP)
	$(BIN)/python -m benchmarks.dataset_build

# --- learned chain: self-denoising rounds, fixed point and the learning curve of the default model ---
.PHONY: bench-self-denoising bench-learning-curve bench-fixed-point
bench-self-denoising: $(STAMP)
	$(BIN)/python -m benchmarks.self_denoising --pretrained geoalign/model/default
bench-fixed-point: $(STAMP)
	$(BIN)/python -m benchmarks.fixed_point
bench-learning-curve: $(STAMP)
	for s in 0 2 3; do $(BIN)/python -m benchmarks.learning_curve --work-dir runs/default --dataset runs/real03 --scale $$s; done

# --- align: accuracy on held-out imagery, speed and memory (docs/benchmarks.md) ---
.PHONY: bench-accuracy bench-align-speed bench-scale
bench-accuracy: $(STAMP)
	$(BIN)/python -m benchmarks.accuracy
bench-align-speed: $(STAMP)
	$(BIN)/python -m benchmarks.align_speed
bench-scale: $(STAMP)
	$(BIN)/python -m benchmarks.scale

# The shipped default model (geoalign/model/default): weights, config and model card, all written by
# these two commands; resumable: re-run `make train-default` after a kill (it passes --resume).
# Benchmark figures join the card with `python -m benchmarks.record_card`.
DEFAULT_SOURCES := $(shell cat sample_data/training/default_sources.txt 2>/dev/null)
DEFAULT_TRAIN_OPTIONS := --rounds 2 --steps 500 --pretrain-steps 500 --threads 1 --seed 0 \
	--realign-with learned --align-pipeline local+learned --learned-scales 1 --smooth-sigma-px 6
.PHONY: train-default
train-default: $(STAMP)
	test -f runs/real03/manifest.json || $(BIN)/geoalign dataset build $(DEFAULT_SOURCES) -o runs/real03 --gsd 0.3 --holdout-fraction 0.2 --scales 3,2,1,0 --seed 0
	$(BIN)/geoalign train runs/real03 -o geoalign/model/default $(DEFAULT_TRAIN_OPTIONS) --resume
