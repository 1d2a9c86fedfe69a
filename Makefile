# The two commands of the README: `make demo` and `make test`. Each creates .venv when missing,
# installs what it needs (re-installing only when pyproject.toml changed) and runs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= demo_output

.PHONY: demo test bench bench-extract lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-core: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

# The tests need torch + torchvision (the `torch` extra, pinned in pyproject.toml) for extractors/;
# the stamp also depends on the Makefile so that venvs made before this rule re-install.
$(VENV)/.installed-test: pyproject.toml Makefile | $(PY)
	$(PY) -m pip install --quiet -e ".[test,torch]"
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

bench-extract: $(VENV)/.installed-test
	$(PY) benchmarks/bench_extract.py --out benchmarks/results/extract.json

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check backdoor_curves extractors tests benchmarks
	$(VENV)/bin/ruff format --check backdoor_curves extractors tests benchmarks

format: $(VENV)/.installed-test
	$(VENV)/bin/ruff format backdoor_curves extractors tests benchmarks
	$(VENV)/bin/ruff check --fix backdoor_curves extractors tests benchmarks

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache build *.egg-info
