# Two commands set everything up from scratch: `make test` and `make demo`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The known-good torch: the CPU build that lies on our machines' disk. Override for a GPU
# build, e.g. `make demo TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'`.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.hpdirs-installed
WEIGHTS ?=
DEMO_OUT ?= outputs

.PHONY: setup test test-numerics test-slow test-gpu lint docs test-docs reference demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_SPEC)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,lint]'
	@touch $@

test: $(STAMP)
	$(PY) -m pytest -q

# The numerics tests again on PyTorch's portable scalar kernels, as another CPU would run them:
# a tolerance that holds on one instruction set only (AVX-512 here, AVX2 or none elsewhere) fails.
NUMERICS := tests/method tests/learning tests/evaluation tests/measuring/test_bench.py tests/generators/test_truth.py
test-numerics: $(STAMP)
	ATEN_CPU_CAPABILITY=default $(PY) -m pytest -q -m "not slow" $(NUMERICS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# The tests of a device path (learn, render, compare, compiled and eager) on CUDA: their `cuda`
# cases, which skip with a reason on a machine without one. Needs a CUDA build of torch (TORCH_SPEC).
test-gpu: $(STAMP)
	$(PY) -m pytest -q -k cuda -rs

# The documentation site, built into site/ (open site/index.html) with warnings as errors.
DOCS_STAMP := $(VENV)/.hpdirs-docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[docs]'
	@touch $@

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# Every offline example of the docs and README, and the notebook, run on a tiny model (~4 minutes).
test-docs: $(STAMP)
	$(PY) -m pytest -q -m docs_examples tests/docs

# The commands' option references in docs/generated/, made from the command line's own help
# (a test fails while they differ from what this makes).
reference: $(STAMP)
	$(PY) -m hpdirs_cli.reference docs/generated

# Style and types of the library and the CLI (settings in pyproject.toml).
lint: $(STAMP)
	$(PY) -m ruff check direction_finder cli
	$(PY) -m ruff format --check direction_finder cli
	$(PY) -m mypy

# About 15 minutes on a 2-core CPU (biggan-deep-128, ~2 s per sample-step): 70 steps x batch 4
# of --recipe sefa (SeFa's closed form, free, refined on the manifold: at a budget this small the
# curvature warm start alone would take ~6 of the minutes), then a render of 8 directions.
# On a GPU raise DEMO_STEPS / DEMO_BATCH (see README).
DEMO_STEPS ?= 70
DEMO_BATCH ?= 4
DEMO_NAME ?= demo
WEIGHTS_ARG := $(if $(WEIGHTS),--weights $(WEIGHTS) --offline,)

demo: $(STAMP)
	$(VENV)/bin/hpdirs learn --class golden_retriever $(WEIGHTS_ARG) --recipe sefa --steps $(DEMO_STEPS) \
		--batch-size $(DEMO_BATCH) --eval-every 20 --eval-samples 8 --checkpoint-every 20 \
		--out $(DEMO_OUT) --name $(DEMO_NAME)-$$(date -u +%Y%m%d-%H%M%S)
	$(VENV)/bin/hpdirs render $$(ls -d $(DEMO_OUT)/golden_retriever/$(DEMO_NAME)-* | tail -1) \
		--directions 0-7 --samples 6 --frames 24

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache .mypy_cache .ruff_cache
