# The two commands of the README: `make demo` and `make test`. Each creates .venv when missing,
# installs what it needs (re-installing only when pyproject.toml changed) and runs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= demo_output
LINT_DIRS := backdoor_curves extractors tests benchmarks

.PHONY: demo test docs bench bench-peers bench-nn-peers bench-grid bench-scale bench-extract bench-nn lint format clean

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
	$(PY) benchmarks/bench_paths.py --out benchmarks/results/paths.json

# Peer influence-function libraries (issue #3): two venvs of their own, because pyDVL pins
# numpy<2 and secml 0.15.6 needs numpy<2 and scikit-learn<=1.7.2. Each is built once (stamp file)
# and rebuilt when its requirements or pyproject.toml change.
PEERS := benchmarks/peers
PEERS_TORCH := $(PEERS)/.venv-torch
PEERS_SECML := $(PEERS)/.venv-secml

$(PEERS_TORCH)/bin/python:
	$(PYTHON) -m venv $(PEERS_TORCH)

$(PEERS_TORCH)/.installed: $(PEERS)/requirements-torch.txt pyproject.toml | $(PEERS_TORCH)/bin/python
	$(PEERS_TORCH)/bin/python -m pip install --quiet -r $(PEERS)/requirements-torch.txt -e .
	touch $@

$(PEERS_SECML)/bin/python:
	$(PYTHON) -m venv $(PEERS_SECML)

$(PEERS_SECML)/.installed: $(PEERS)/requirements-secml.txt pyproject.toml | $(PEERS_SECML)/bin/python
	$(PEERS_SECML)/bin/python -m pip install --quiet -r $(PEERS)/requirements-secml.txt -e .
	$(PEERS_SECML)/bin/python -m pip install --quiet --no-deps --ignore-requires-python secml==0.15.6
	touch $@

bench-peers: $(PEERS_TORCH)/.installed $(PEERS_SECML)/.installed
	$(PEERS_TORCH)/bin/python $(PEERS)/bench_torch_peers.py --out benchmarks/results/peers_torch.json
	$(PEERS_SECML)/bin/python $(PEERS)/bench_secml.py --out benchmarks/results/peers_secml.json
	$(PYTHON) $(PEERS)/report.py --torch benchmarks/results/peers_torch.json \
		--secml benchmarks/results/peers_secml.json --out benchmarks/results/peers.json

# Deep-model influence peers (issue #17): kronfluence, traker (TRAK) and dattri in one venv of their
# own with the local torch build, built once (stamp file) and rebuilt when the requirements or
# pyproject.toml change (about 7 min from local wheels); the run trains SmallCNN for 1, 5 and 20
# epochs and runs every peer on each (4.5 min on 2 cores).
NN_PEERS := benchmarks/nn_peers
NN_PEERS_VENV := $(NN_PEERS)/.venv

$(NN_PEERS_VENV)/bin/python:
	$(PYTHON) -m venv $(NN_PEERS_VENV)

$(NN_PEERS_VENV)/.installed: $(NN_PEERS)/requirements.txt pyproject.toml | $(NN_PEERS_VENV)/bin/python
	$(NN_PEERS_VENV)/bin/python -m pip install --quiet -r $(NN_PEERS)/requirements.txt -e .
	touch $@

bench-nn-peers: $(NN_PEERS_VENV)/.installed
	$(NN_PEERS_VENV)/bin/python $(NN_PEERS)/bench_nn_peers.py --out benchmarks/results/nn_peers.json

bench-grid: $(VENV)/.installed-bench
	$(PY) benchmarks/bench_grid.py --out benchmarks/results/grid.json

# Issue 13: time and peak memory of curves, slopes and small grids for 500 ... 8000 training points
# and 784 / 4096 features, one fresh process per cell (20-40 min on 2 cores).
bench-scale: $(VENV)/.installed-bench
	$(PY) benchmarks/bench_scale.py --out benchmarks/results/scale.json

bench-extract: $(VENV)/.installed-test
	$(PY) benchmarks/bench_extract.py --out benchmarks/results/extract.json

# The neural-network adapter (issue 11): per-sample gradients, tracking overhead, exact derivative
# and finite-difference slopes; needs the torch extra like bench-extract (2.5-4 min on 2 cores).
bench-nn: $(VENV)/.installed-test
	$(PY) benchmarks/bench_nn.py --out benchmarks/results/nn.json

# The documentation site (issue 15): Sphinx + numpydoc + myst-nb into build/docs/html, offline
# (no intersphinx; notebooks rendered without executing), warnings as errors, a fresh build (-E)
# so that every warning is seen. The torch extra is needed to import the nn and extractors pages.
$(VENV)/.installed-docs: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[docs,torch]"
	touch $@

docs: $(VENV)/.installed-docs
	$(PY) -m sphinx -b html -E -W --keep-going -q docs build/docs/html
	@echo "documentation: build/docs/html/index.html"

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)

format: $(VENV)/.installed-test
	$(VENV)/bin/ruff format $(LINT_DIRS)
	$(VENV)/bin/ruff check --fix $(LINT_DIRS)

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache build *.egg-info $(PEERS_TORCH) $(PEERS_SECML)
