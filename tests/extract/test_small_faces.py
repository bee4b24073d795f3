"""Issue 8: extraction with default options finds the small faces of a 2K scope plate (real dlib)."""

import json
from pathlib import Path

import pytest

from dfl_vfx.demo.scope import TRUTH_FILE, ScopeShotConfig, build_scope_shot, faces_found
from dfl_vfx.extract.pipeline import ExtractOptions, extract


@pytest.fixture(scope="module")
def scope_shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scope")
    build_scope_shot(root, ScopeShotConfig(frames=3), progress=False)
    return root


def _recall(shot: Path, faceset: Path) -> tuple[int, int]:
    """(faces found, faces placed) over the shot."""
    placed = json.loads((shot / TRUTH_FILE).read_text())["faces"]
    found = json.loads((faceset / "alignments.json").read_text())["frames"]
    hits = sum(faces_found(boxes, [face["rect"] for face in found[f]["faces"]]) for f, boxes in placed.items())
    return hits, sum(len(boxes) for boxes in placed.values())


def test_default_options_find_every_face_of_the_scope_plate(scope_shot: Path, tmp_path: Path) -> None:
    options = ExtractOptions(size=128, jobs=1, progress=False)
    summary = extract(str(scope_shot / "plate" / "plate.####.exr"), str(tmp_path / "faces"), options)
    assert _recall(scope_shot, tmp_path / "faces") == (6, 6)
    assert summary.faces_written == 6 and summary.tracks == 2
    assert summary.detection.startswith("detection: faces from 99 px, searched on a 1572x712 copy of 2176x986")


def test_the_old_fixed_640_copy_misses_the_small_face(scope_shot: Path, tmp_path: Path) -> None:
    # What issue 8 saw: the big face is found on the 640 copy without upsampling, so the small one never is.
    options = ExtractOptions(size=128, jobs=1, progress=False, detect_size=640, min_face=40)
    extract(str(scope_shot / "plate" / "plate.####.exr"), str(tmp_path / "faces"), options)
    assert _recall(scope_shot, tmp_path / "faces") == (3, 6)


def test_largest_selection_answers_from_the_coarse_copy(scope_shot: Path, tmp_path: Path) -> None:
    options = ExtractOptions(size=128, jobs=1, progress=False, select="largest")
    summary = extract(str(scope_shot / "plate" / "plate.####.exr"), str(tmp_path / "faces"), options)
    assert summary.faces_written == 3
    rects = [f["faces"][0]["rect"] for f in json.loads((tmp_path / "faces" / "alignments.json").read_text())
             ["frames"].values()]
    assert all(r[2] - r[0] > 190 for r in rects)  # the nearer person, every frame
    assert "786x356 copy, then a 1572x712 copy when that holds under 1 face(s)" in summary.detection
