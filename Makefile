# Two commands from a fresh clone: `make demo` and `make test`. Both create the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# llama-cpp-python builds from source; the native build crashes on some CPUs
export CMAKE_ARGS := -DGGML_NATIVE=OFF

.PHONY: install demo test bench model clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU wheel first, so that no dependency can pull a CUDA build of torch
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,elicit]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/univar demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# rebuild the shipped value encoder (src/univar/model/shipped/) and its model card
model: $(STAMP)
	$(BIN)/python scripts/train_default.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache test-artifacts
