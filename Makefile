# Two commands: `make demo` and `make test`. Each sets itself up on a fresh clone.
PYTHON ?= python3
# The CPU build of torch kept on our machines (a plain `torch` would pull a multi-GB CUDA build).
TORCH  ?= torch==2.13.0
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dfl-vfx-installed
DEMO   ?= build/demo
# Blender's own environments (bpy pins its numpy): 5.0.1 for `make test`, 4.2 LTS for `make test-blender-lts`
BLENDER_PYTHON ?= python3.11
BVENV  := .venv-blender
BSTAMP := $(BVENV)/.bpy-installed
LTSVENV  := .venv-blender-lts
LTSSTAMP := $(LTSVENV)/.bpy-installed
BLENDER_TESTS := -m pytest -q --confcutdir=tests/blender tests/blender
ADDON_ZIP := build/dfl_blender.zip

.PHONY: demo test test-blender-lts blender-addon lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall when packaging or native sources change (the native core is compiled by pip).
$(STAMP): $(BIN)/python pyproject.toml setup.py $(wildcard native/src/* native/include/*) $(wildcard native/cuda/*)
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test,opencue]"
	touch $@

$(BSTAMP):
	$(BLENDER_PYTHON) -m venv $(BVENV)
	$(BVENV)/bin/python -m pip install -q --upgrade pip
	$(BVENV)/bin/python -m pip install -q "bpy==5.0.1" "numpy<2" pytest
	touch $@

$(LTSSTAMP):
	$(BLENDER_PYTHON) -m venv $(LTSVENV)
	$(LTSVENV)/bin/python -m pip install -q --upgrade pip
	$(LTSVENV)/bin/python -m pip install -q "bpy==4.2.23" pytest
	touch $@

demo: $(STAMP) $(BSTAMP)
	$(BIN)/dfl-vfx demo --out $(DEMO)
	DFL_VFX_EXE=$(CURDIR)/$(BIN)/dfl-vfx $(BVENV)/bin/python blender_addon/render_demo.py --demo $(DEMO)
	$(BIN)/python blender_addon/demo_sheet.py --demo $(DEMO)

test: $(STAMP) $(BSTAMP)
	$(BIN)/python -m pytest -q
	$(BVENV)/bin/python $(BLENDER_TESTS)

test-blender-lts: $(STAMP) $(LTSSTAMP)
	$(LTSVENV)/bin/python $(BLENDER_TESTS)

# the Blender extension zip (also a legacy add-on through bl_info), with the host client dfl_host inside
blender-addon:
	$(PYTHON) blender_addon/build_addon.py --out $(ADDON_ZIP)

lint: $(STAMP)
	$(BIN)/ruff check dfl_vfx dfl_host nuke trainer tests bench blender_addon

bench: $(STAMP)
	$(BIN)/python bench/extract_bench.py --out build/bench
	$(BIN)/python bench/train_bench.py --out build/bench
	$(BIN)/python bench/merge_bench.py --out build/bench
	$(BIN)/python bench/swap_bench.py --out build/bench

clean:
	rm -rf build $(VENV) $(BVENV) $(LTSVENV) *.egg-info dfl_vfx/_native*.so
