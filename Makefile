# Two commands: `make demo` and `make test`. Both create .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --no-cache-dir --upgrade pip
	$(BIN)/pip install -q --no-cache-dir torch==2.13.0
	$(BIN)/pip install -q --no-cache-dir -e '.[test,dask]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m geoalign.demo --out demo_output

test: $(STAMP)
	$(BIN)/python -m pytest -q tests --ignore=tests/qgis
	$(MAKE) --no-print-directory test-qgis

# --- QGIS plugin -----------------------------------------------------------------------------
# The installable zip (one top-level folder, geoalign_qgis/): build/qgis_plugin/geoalign_qgis-VERSION.zip
QGIS_PY ?= /usr/bin/python3
QGIS_VENV := $(VENV)/qgis
QGIS_STAMP := $(QGIS_VENV)/.installed
.PHONY: qgis-plugin test-qgis qgis-screenshot qgis-styles
qgis-plugin:
	$(PY) qgis_plugin/build_zip.py build/qgis_plugin

# QGIS's Python is Debian's python3 with its qgis module; geoalign stays in .venv and the tests
# call its executable as desktop QGIS does. Pytest runs from a venv of QGIS's Python that sees the
# system packages ($(QGIS_VENV)). Without QGIS the tests are skipped, except with CI=true.
$(QGIS_STAMP):
	$(QGIS_PY) -m venv --system-site-packages $(QGIS_VENV)
	$(QGIS_VENV)/bin/pip install -q pytest==9.2.0 pytest-timeout==2.4.0
	touch $(QGIS_STAMP)

test-qgis: $(STAMP)
	@if $(QGIS_PY) -c 'import qgis.core' 2>/dev/null; then \
	  $(MAKE) -s --no-print-directory $(QGIS_STAMP) && \
	  GEOALIGN_QGIS_TESTS=1 GEOALIGN_EXECUTABLE=$(abspath $(BIN))/geoalign QT_QPA_PLATFORM=offscreen \
	    $(QGIS_VENV)/bin/python -m pytest -q tests/qgis -p no:cacheprovider --durations=5; \
	elif [ "$$CI" = "true" ]; then \
	  echo "QGIS is not installed for $(QGIS_PY) (CI=true: the QGIS tests must run): apt-get install -y --no-install-recommends python3-qgis qgis-providers" >&2; exit 1; \
	else \
	  echo "tests/qgis skipped: QGIS is not installed for $(QGIS_PY) (apt-get install -y --no-install-recommends python3-qgis qgis-providers)"; \
	fi

# The screenshot of qgis_plugin/README.md, rendered by QGIS in the tests.
qgis-screenshot: $(STAMP) $(QGIS_STAMP)
	GEOALIGN_QGIS_TESTS=1 GEOALIGN_EXECUTABLE=$(abspath $(BIN))/geoalign QT_QPA_PLATFORM=offscreen \
	  GEOALIGN_QGIS_SCREENSHOT=$(abspath docs/images/qgis_align.png) \
	  $(QGIS_VENV)/bin/python -m pytest -q tests/qgis -k render -p no:cacheprovider

# The shipped QML styles, written by QGIS's own API.
qgis-styles:
	QT_QPA_PLATFORM=offscreen $(QGIS_PY) qgis_plugin/make_styles.py

clean:
	rm -rf demo_output

# --- benchmarks (each writes PNG + JSON under benchmarks/results/) ---
.PHONY: bench-similarity-sine bench-similarity-sine-authors bench-similarity-digits bench-similarity-speed bench-similarity-topk bench-dataset bench-fetch
bench-similarity-sine: $(STAMP)
	$(BIN)/python -m benchmarks.similarity.sine_toy
# The authors' training protocol to the end (5000 epochs, ~60 min on one busy core; resumable)
bench-similarity-sine-authors: $(STAMP)
	mkdir -p runs
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.similarity.sine_toy_authors --epochs 5000 --seeds 1 --state runs/sine_toy_authors.pt
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
	$(BIN)/python -m benchmarks.self_denoising --pretrained geoalign/model/default --rounds 4 --lr 0.001 \
		--average-tail 0.5 --seeds 0 1 2
bench-fixed-point: $(STAMP)
	$(BIN)/python -m benchmarks.fixed_point
bench-learning-curve: $(STAMP)
	for s in 0 2 3; do $(BIN)/python -m benchmarks.learning_curve --work-dir runs/default --dataset runs/real03 --scale $$s; done

# --- align: accuracy on held-out imagery, speed and memory (docs/benchmarks.md) ---
.PHONY: bench-accuracy bench-roof-offset bench-align-speed bench-scale
bench-accuracy: $(STAMP)
	$(BIN)/python -m benchmarks.accuracy
bench-roof-offset: $(STAMP)
	$(BIN)/python -m benchmarks.roof_offset
bench-align-speed: $(STAMP)
	$(BIN)/python -m benchmarks.align_speed
bench-scale: $(STAMP)
	$(BIN)/python -m benchmarks.scale

# Training steps per second with 1 and 2 processes (DistributedDataParallel)
.PHONY: bench-ddp
bench-ddp: $(STAMP)
	$(BIN)/python -m benchmarks.ddp_speed

# The shipped default model (geoalign/model/default): weights, config and model card, all written by
# these two commands; resumable: re-run `make train-default` after a kill (it passes --resume).
# Benchmark figures join the card with `python -m benchmarks.record_card`.
DEFAULT_SOURCES := $(shell cat sample_data/training/default_sources.txt 2>/dev/null)
DEFAULT_TRAIN_OPTIONS := --rounds 2 --steps 500 --pretrain-steps 20000 --threads 1 --seed 0 \
	--realign-with learned --align-pipeline local+learned --learned-scales 1 --pick-scales 3,2,1 \
	--smooth-sigma-px 6
.PHONY: train-default
train-default: $(STAMP)
	test -f runs/real03/manifest.json || $(BIN)/geoalign dataset build $(DEFAULT_SOURCES) -o runs/real03 --gsd 0.3 --holdout-fraction 0.2 --scales 3,2,1,0 --seed 0
	$(BIN)/geoalign train runs/real03 -o geoalign/model/default $(DEFAULT_TRAIN_OPTIONS) --resume
	$(BIN)/geoalign model stats geoalign/model/default runs/real03 --threads 1 --seed 0
	$(BIN)/geoalign model calibrate geoalign/model/default --threads 1

# --- trust report: does expected_error_px track the actual error on held-out regions? ---
.PHONY: bench-trust
bench-trust: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.trust
# imagery coarser than the model's 0.3 m (strips block-averaged to 0.6 and 1 m): input, local, default
# and --trust-gate 2/4/8 px on the same misaligned maps (docs/coarse-imagery.md)
.PHONY: bench-coarse
bench-coarse: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.coarse_imagery
# align and align --report in turns on a 4000x4000 raster: the report's cost (ceiling 1.5x)
.PHONY: bench-report-speed
bench-report-speed: $(STAMP)
	$(BIN)/python -m benchmarks.report_speed
