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
	$(BIN)/pip install -q -e '.[test]'
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

# --- learned chain (issue 4): self-denoising rounds and the learning curve of the default model ---
.PHONY: bench-self-denoising bench-learning-curve bench-fixed-point
bench-self-denoising: $(STAMP)
	$(BIN)/python -m benchmarks.self_denoising --pretrained geoalign/model/default
bench-fixed-point: $(STAMP)
	$(BIN)/python -m benchmarks.fixed_point
bench-learning-curve: $(STAMP)
	for s in 0 2 3; do $(BIN)/python -m benchmarks.learning_curve --work-dir runs/default --dataset runs/real03 --scale $$s; done

# --- align / evaluate benchmarks (issue 4 §6) ---
.PHONY: bench-accuracy bench-align-speed
bench-accuracy: $(STAMP)
	$(BIN)/python -m benchmarks.accuracy
bench-align-speed: $(STAMP)
	$(BIN)/python -m benchmarks.align_speed

# The shipped default model (geoalign/model/default), trained by the project's own commands;
# resumable: re-run `make train-default` after a kill (it passes --resume).
DEFAULT_SOURCES := $(shell cat sample_data/training/default_sources.txt 2>/dev/null)
.PHONY: train-default
train-default: $(STAMP)
	test -f runs/real03/manifest.json || $(BIN)/geoalign dataset build $(DEFAULT_SOURCES) -o runs/real03 --gsd 0.3 --holdout-fraction 0.2 --scales 3,2,1,0 --seed 0
	$(BIN)/geoalign train runs/real03 -o geoalign/model/default --rounds 2 --steps 500 --pretrain-steps 500 --threads 1 --seed 0 --resume
	$(BIN)/geoalign model stats geoalign/model/default runs/real03 --threads 1 --seed 0
	$(BIN)/geoalign model calibrate geoalign/model/default --threads 1

# --- trust report: does expected_error_px track the actual error on held-out regions? ---
.PHONY: bench-trust
bench-trust: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.trust
