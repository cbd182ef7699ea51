# `make demo` and `make test` set up everything they need on first use (a .venv with the pinned
# dependencies of setup.py, and the system library open3d needs) and are quick afterwards.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.xmodal-installed
DEMO   ?= runs/demo
# Benchmarks and tests fix the thread count; 2 cores here.
export OMP_NUM_THREADS ?= 2
export MPLBACKEND := Agg

.PHONY: setup demo test test-full bench bench-ops clean

setup: $(STAMP)

$(STAMP): setup.py
	@bash tools/ensure_system_deps.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[cpu,dev]"
	$(PY) tools/check_install.py
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/xmodal demo --out $(DEMO)

test: $(STAMP)
	$(PY) -m pytest -q

test-full: $(STAMP)
	$(PY) -m pytest -q --full

bench: $(STAMP)
	$(PY) tools/bench_synth.py

# the ops against their peers at 1 and 2 threads (about 20 minutes here); figures in docs/benchmarks.md
bench-ops: $(STAMP)
	$(VENV)/bin/xmodal bench ops --threads 1,2 --json runs/bench_ops.json

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
