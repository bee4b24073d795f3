"""Fixtures shared across test folders: a small demo shot built once per session."""

from pathlib import Path

import pytest

from dfl_vfx.demo.shot import DemoShotConfig, build_demo_shot

SMALL_SHOT = DemoShotConfig(frames=12, width=640, height=360, overscan=24, source_photos=4, seed=3)


@pytest.fixture(scope="session")
def small_shot_config() -> DemoShotConfig:
    """The configuration the ``small_shot`` fixture was built with."""
    return SMALL_SHOT


@pytest.fixture(scope="session")
def small_shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame 640x360 demo shot (plate/plate.####.exr, src/src.####.png); do not modify it."""
    root = tmp_path_factory.mktemp("shot")
    build_demo_shot(root, SMALL_SHOT, progress=False)
    return root
