# Quick start: `make demo` runs the demo, `make test` runs the tests. Both create (or reuse) the virtual
# environment in .venv. The demo needs the package alone; the tests add the dev tools and PyTorch, so
# that the comparisons with PyTorch run rather than skip. The commands choose their BLAS threads
# themselves (see tinygrad_rnn/cli/threads.py): no environment variable is needed.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
BASE := $(VENV)/.installed-base
DEV := $(VENV)/.installed-dev
TORCH_STAMP := $(VENV)/.installed-torch
# PyTorch's CPU build, as pinned for the comparison tests. Where pip's default index would give a CUDA
# build, point TORCH_INDEX at PyTorch's CPU wheel index (make test TORCH_INDEX=...).
TORCH ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: demo test lint bench install torch clean notebooks

$(PY):
	$(PYTHON) -m venv $(VENV)

# the package and its dependencies (numpy, graphviz, graphviz-pure, threadpoolctl, safetensors): the demo
$(BASE): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

# pytest, hypothesis, ruff, tqdm, the notebook tools and playwright (it drives the system chromium in
# tests/test_viz_page.py; it never downloads a browser: no `playwright install`)
$(DEV): $(BASE)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

$(TORCH_STAMP): $(DEV)
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	touch $@

install: $(DEV)

torch: $(TORCH_STAMP)

demo: $(BASE)
	$(PY) -m tinygrad_rnn demo

# -rs lists every skipped test with its reason at the end of the run
test: $(TORCH_STAMP)
	$(PY) -m ruff check tinygrad_rnn tests benchmarks notebooks
	$(PY) -m pytest -q -rs

lint: $(DEV)
	$(PY) -m ruff check tinygrad_rnn tests benchmarks notebooks
	$(PY) -m ruff format --check tinygrad_rnn tests benchmarks notebooks

# run every notebook top to bottom and save its outputs (tests/test_notebooks.py fails when they are stale)
notebooks: $(TORCH_STAMP)
	$(PY) notebooks/regenerate.py

bench: $(BASE)
	$(PY) benchmarks/ops.py
	$(PY) benchmarks/replay.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
