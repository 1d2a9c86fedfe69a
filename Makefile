# The two commands of the README: `make demo` and `make test`. Each creates .venv when missing,
# installs what it needs (re-installing only when pyproject.toml changed) and runs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= demo_output
# the folders that exist (extractors/ arrives with its own branch)
LINT_DIRS := $(wildcard backdoor_curves extractors tests benchmarks)

.PHONY: demo test bench bench-grid lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-core: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $@

demo: $(VENV)/.installed-core
	$(VENV)/bin/backdoor-curves demo --out $(OUT)

test: $(VENV)/.installed-test
	$(PY) -m pytest -q

bench: $(VENV)/.installed-bench
	$(PY) benchmarks/bench_core.py --out benchmarks/results/core.json

bench-grid: $(VENV)/.installed-bench
	$(PY) benchmarks/bench_grid.py --out benchmarks/results/grid.json

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)

format: $(VENV)/.installed-test
	$(VENV)/bin/ruff format $(LINT_DIRS)
	$(VENV)/bin/ruff check --fix $(LINT_DIRS)

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache build *.egg-info
