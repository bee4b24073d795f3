# Two commands: `make demo` and `make test`. Each sets itself up on a fresh clone.
PYTHON ?= python3
# The CPU build of torch kept on our machines (a plain `torch` would pull a multi-GB CUDA build).
TORCH  ?= torch==2.13.0
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dfl-vfx-installed
DEMO   ?= build/demo

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall when packaging or native sources change (the native core is compiled by pip).
$(STAMP): $(BIN)/python pyproject.toml setup.py $(wildcard native/src/* native/include/*) $(wildcard native/cuda/*)
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test,opencue]"
	touch $@

demo: $(STAMP)
	$(BIN)/dfl-vfx demo --out $(DEMO)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check dfl_vfx dfl_host nuke trainer tests bench

bench: $(STAMP)
	$(BIN)/python bench/extract_bench.py --out build/bench
	$(BIN)/python bench/train_bench.py --out build/bench
	$(BIN)/python bench/merge_bench.py --out build/bench
	$(BIN)/python bench/swap_bench.py --out build/bench

clean:
	rm -rf build $(VENV) *.egg-info dfl_vfx/_native*.so
