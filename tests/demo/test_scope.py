"""The small-face scope plate: format, where its faces are, and the recall helper."""

import json
from pathlib import Path

import numpy as np

from dfl_vfx.color.ocio import WorkingSpace
from dfl_vfx.demo.scope import TRUTH_FILE, ScopeShotConfig, build_scope_shot, faces_found
from dfl_vfx.face.detect import create_backend, find_faces
from dfl_vfx.io.image import Window, read_image


def test_scope_plate_format_and_face_boxes(tmp_path: Path) -> None:
    summary = build_scope_shot(tmp_path, ScopeShotConfig(frames=2), progress=False)
    assert summary["plate_frames"] == "1001-1002"
    image = read_image(tmp_path / "plate" / "plate.1002.exr")
    assert image.display_window == Window(0, 0, 2048, 858)
    assert image.data_window == Window(-64, -64, 2176, 986)
    assert image.channels == ["R", "G", "B", "A"] and image.channel_formats == ["half"] * 4
    rgb = image.rgb()
    assert rgb.max() > 3.0 and (rgb < 0).any()  # practical lights above 1, grain below 0 in the darks
    boxes = json.loads((tmp_path / TRUTH_FILE).read_text())["faces"]["1002"]
    widths = [box[2] - box[0] for box in boxes]
    assert 148 < widths[0] < 156 and 207 < widths[1] < 218  # a little wider than 150 and 210: the roll
    # the recorded boxes are where dlib finds the faces on the full-resolution frame (absolute image pixels)
    display = WorkingSpace("ACEScg").display_uint8(rgb)
    found = [np.array(f.rect) + [-64, -64, -64, -64] for f in find_faces(display, create_backend("dlib"),
                                                                            detect_size=2176, min_face=100)]
    assert faces_found(boxes, [list(r) for r in found]) == 2


def test_faces_found_counts_each_found_box_once() -> None:
    placed = [[0, 0, 100, 100], [200, 0, 300, 100]]
    assert faces_found(placed, []) == 0
    assert faces_found(placed, [[10, 10, 90, 90]]) == 1
    assert faces_found(placed, [[10, 10, 90, 90], [20, 20, 80, 80]]) == 1  # two boxes on one face: one face
    assert faces_found(placed, [[210, 0, 290, 90], [0, 0, 100, 100], [500, 0, 600, 100]]) == 2


def test_demo_shot_scope_builds_the_scope_plate(tmp_path: Path, capsys) -> None:
    """`dfl-vfx demo-shot` could only build the 1920x1080 demo shot; --scope writes the 2K scope plate."""
    from dfl_vfx.cli.main import main
    from dfl_vfx.io.image import read_header
    from dfl_vfx.io.sequence import open_sequence

    assert main(["demo-shot", str(tmp_path / "scope"), "--scope", "--frames", "2", "--first-frame", "2001"]) == 0
    plate = open_sequence(str(tmp_path / "scope" / "plate" / "plate.####.exr"))
    assert plate.frames == [2001, 2002] and plate.missing() == []
    header = read_header(plate.path(2002))
    assert header.display_window == Window(0, 0, 2048, 858) and header.data_window == Window(-64, -64, 2176, 986)
    truth = json.loads((tmp_path / "scope" / TRUTH_FILE).read_text())
    assert sorted(truth["faces"]) == ["2001", "2002"] and len(truth["faces"]["2001"]) == 2
    assert not (tmp_path / "scope" / "src").exists()
    assert "2048x858 + 64 px overscan" in capsys.readouterr().out
    assert main(["demo-shot", str(tmp_path / "other"), "--scope", "--source-photos", "3"]) == 2
    assert "--source-photos: the scope plate (--scope) has no source photos" in capsys.readouterr().err
