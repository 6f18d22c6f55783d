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

.PHONY: setup test test-slow demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_SPEC)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

demo: $(STAMP)
	$(VENV)/bin/hpdirs --version
	@echo "The learn and render commands are not built yet (issue 4): the demo will run a small"
	@echo "learn + render for golden_retriever on biggan-deep-128 once they land."

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
