# attnlab — the two commands a learner needs are `make lab` and `make test`.
# Everything installs into a local virtual environment (.venv); nothing global is touched.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
COLAB_VENV ?= .venv-colab
CBIN   := $(COLAB_VENV)/bin
PIP_FLAGS ?= -q --disable-pip-version-check

.PHONY: install lab test lint test-browser test-colab test-parity bench train clean help

help:
	@echo "make install     create .venv and install attnlab[notebooks,dev] (no JupyterLab launch)"
	@echo "make lab         make install, then open JupyterLab on notebooks/"
	@echo "make test        create/reuse .venv, then ruff, nbstripout --verify, pytest, notebooks (nbmake)"
	@echo "make test-browser only tests/test_browser.py: JupyterLab in the system Chromium (part of make test)"
	@echo "make test-colab  the unit tests (not the browser test) and notebooks under Colab's pins (.venv-colab)"
	@echo "make test-parity GPT-2 parity with Hugging Face transformers (installs torch 2.13 CPU + transformers)"
	@echo "make bench       every benchmarks/bench_*.py: tables, JSON + SUMMARY.md in benchmarks/results/"
	@echo "make train       python -m attnlab train (the default mini GPT)"

# The stamp file is rebuilt when pyproject.toml changes, so `make test` reuses a good .venv.
$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/python -m pip install $(PIP_FLAGS) -e ".[notebooks,dev]"
	@touch $@

install: $(VENV)/.installed

# JupyterLab refuses to run as root (e.g. in a container) unless told --allow-root: pass it only then.
lab: $(VENV)/.installed
	$(BIN)/jupyter lab $$(test "$$(id -u)" = 0 && echo --allow-root) notebooks/

lint: $(VENV)/.installed
	$(BIN)/ruff check attnlab tests benchmarks notebooks
	$(BIN)/nbstripout --verify notebooks/*.ipynb

test: lint
	ATTNLAB_FAST=1 ATTNLAB_OFFLINE=1 $(BIN)/python -m pytest tests
	ATTNLAB_FAST=1 ATTNLAB_OFFLINE=1 $(BIN)/python -m pytest --nbmake --nbmake-timeout=300 notebooks/

# The widgets in a real browser: JupyterLab in Debian's `chromium` (apt-get install chromium),
# driven by Playwright; screenshots in tests/artifacts/. Also part of `make test`.
test-browser: $(VENV)/.installed
	ATTNLAB_FAST=1 ATTNLAB_OFFLINE=1 $(BIN)/python -m pytest -m browser tests/test_browser.py

# GPT-2 parity against Hugging Face transformers (PyTorch, CPU build), in the same .venv.
test-parity: $(VENV)/.installed
	$(BIN)/python -m pip install $(PIP_FLAGS) "torch==2.13.0" -e ".[hub,parity]"
	ATTNLAB_FAST=1 ATTNLAB_OFFLINE=1 $(BIN)/python -m pytest tests/test_hub.py

# Colab's stack: install the pins first, then attnlab exactly as a notebook's Colab cell does
# (no extras), then prove that no pinned version moved. The browser test (marker `browser`) is
# left out: Colab's frontend is not JupyterLab, and this environment holds Colab's pins and the
# test runners, not JupyterLab or Playwright.
$(COLAB_VENV)/.installed: pyproject.toml ci/colab-constraints.txt
	@test -x $(CBIN)/python || $(PYTHON) -m venv $(COLAB_VENV)
	$(CBIN)/python -m pip install $(PIP_FLAGS) -r ci/colab-constraints.txt pytest nbmake hypothesis ipykernel
	$(CBIN)/python -m pip freeze > $(COLAB_VENV)/before.txt
	$(CBIN)/python -m pip install $(PIP_FLAGS) .
	$(CBIN)/python -m pip freeze > $(COLAB_VENV)/after.txt
	$(CBIN)/python ci/check_pins.py ci/colab-constraints.txt $(COLAB_VENV)/after.txt
	@touch $@

test-colab: $(COLAB_VENV)/.installed
	cd tests && ATTNLAB_FAST=1 ATTNLAB_OFFLINE=1 ATTNLAB_COLAB_PINS=../ci/colab-constraints.txt ../$(CBIN)/python -m pytest -p no:cacheprovider --rootdir=.. -c ../pyproject.toml -m "not browser" .
	ATTNLAB_FAST=1 ATTNLAB_OFFLINE=1 $(CBIN)/python -m pytest -p no:cacheprovider --nbmake --nbmake-timeout=300 notebooks/

# The whole suite, then benchmarks/results/SUMMARY.md. The PyTorch references run only when torch
# and transformers are installed (make test-parity installs them). BENCH_FULL=07,09 also runs those
# notebooks in full mode (slow); BENCH_FLAGS=--quick shortens the timed benchmarks.
BENCH_FULL ?=
BENCH_FLAGS ?=
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_attention.py $(BENCH_FLAGS)
	$(BIN)/python benchmarks/bench_train.py $(BENCH_FLAGS)
	$(BIN)/python benchmarks/bench_generate.py $(BENCH_FLAGS)
	$(BIN)/python benchmarks/bench_widget.py
	$(BIN)/python benchmarks/bench_notebooks.py $(if $(BENCH_FULL),--full $(BENCH_FULL))
	@if $(BIN)/python -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')"; then \
		$(BIN)/python benchmarks/bench_gpu.py $(BENCH_FLAGS); \
	else echo "bench_gpu: JAX sees no GPU here, skipped (see benchmarks/README.md)"; fi
	$(BIN)/python benchmarks/summary.py

train: $(VENV)/.installed
	$(BIN)/python -m attnlab train

clean:
	rm -rf $(VENV) $(COLAB_VENV) .pytest_cache .ruff_cache runs benchmarks/results/*.json
