"""Fixtures of the trainer tests: whole-face facesets, as `dfl-vfx extract` writes by default."""

from pathlib import Path

import pytest

from dfl_vfx.color.ocio import SRGB_SPACE
from dfl_vfx.extract.pipeline import ExtractOptions, extract


@pytest.fixture(scope="session")
def wf_facesets(small_shot: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(src, dst) whole-face facesets at 64 px (extract's default face type, at a tiny size)."""
    root = tmp_path_factory.mktemp("wf_facesets")
    common = dict(face_type="wf", size=64, select="largest", jobs=1, progress=False)
    extract(str(small_shot / "plate" / "plate.####.exr"), str(root / "dst"), ExtractOptions(**common))
    extract(str(small_shot / "src" / "src.####.png"), str(root / "src"),
            ExtractOptions(colorspace=SRGB_SPACE, **common))
    return root / "src", root / "dst"
