# Quick start: `make demo` runs the demo, `make test` runs the tests. Both create (or reuse) the
# virtual environment in .venv and install the package with its dev extras into it.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install torch clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# one BLAS thread: the matrices here are small, and BLAS threads fighting for 2 busy cores cost more
# than they give (tests and notebooks ran up to 10x slower on a loaded machine)
demo: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m tinygrad_rnn demo

test: $(STAMP)
	$(PY) -m ruff check tinygrad_rnn tests benchmarks notebooks
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check tinygrad_rnn tests benchmarks notebooks
	$(PY) -m ruff format --check tinygrad_rnn tests benchmarks notebooks

# optional: PyTorch for the comparison tests (they are skipped without it)
torch: $(STAMP)
	$(PY) -m pip install --quiet torch==2.13.0

bench: $(STAMP)
	$(PY) benchmarks/ops.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
