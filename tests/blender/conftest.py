"""Fixtures of the Blender tests, which run in Blender's own Python environment (``.venv-blender/``: bpy 5.0.1,
numpy<2; ``.venv-blender-lts/``: bpy 4.2.23), never in the engine's. The engine is the real one, driven as a
separate process (``.venv/bin/dfl-vfx``, or ``$DFL_VFX_EXE``); the demo plate, a model and reference data come from
it, built once per session. The add-on is enabled headlessly from ``blender_addon/`` with the repository root on
``sys.path`` for the host client ``dfl_host``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from blender_comp import FIRST, LAST, MAKE_MODEL, engine_exe_path, engine_python, run_engine  # noqa: E402


@pytest.fixture(scope="session")
def engine_exe() -> str:
    return engine_exe_path()


@pytest.fixture(scope="session")
def demo_plate(tmp_path_factory: pytest.TempPathFactory, engine_exe: str) -> Path:
    """The demo plate's first 3 frames (1920x1080 display, data window -64,-64 .. 1983,1143): plate/plate.####.exr."""
    root = tmp_path_factory.mktemp("demo_shot")
    run_engine(engine_exe, "demo-shot", "--frames", str(LAST - FIRST + 1), "--first-frame", str(FIRST), str(root))
    return root / "plate"


@pytest.fixture(scope="session")
def model(tmp_path_factory: pytest.TempPathFactory, engine_exe: str) -> Path:
    """An exported (seeded, untrained) whole-face 64 px model: its face differs visibly from the plate's."""
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    run_engine(engine_python(), "-c", MAKE_MODEL, str(path))
    return path


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bake cache every test's DFL Swap node writes in (one engine process serves them all)."""
    return tmp_path_factory.mktemp("dfl_cache")


@pytest.fixture(scope="session")
def addon(engine_exe: str) -> Iterator[Any]:
    """The add-on, enabled as Blender does (``addon_utils``), its engine preference set."""
    import addon_utils

    module = addon_utils.enable("dfl_blender", default_set=True, handle_error=None)
    assert module is not None, "dfl_blender did not enable"
    from dfl_blender import prefs

    prefs.preferences().engine = engine_exe
    yield module
    addon_utils.disable("dfl_blender", default_set=True)


