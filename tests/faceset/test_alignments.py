"""alignments.json has one owner (dfl_vfx.faceset.alignments): a round trip, the layout readers rely on, and one-line
errors naming the file for a malformed one, in the module and in `dfl-vfx swap --faceset`."""

import json
from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.faceset.alignments import (
    ALIGNMENTS_FILE,
    Alignments,
    FoundFace,
    FrameFaces,
    TrackedFace,
    read_alignments,
    write_alignments,
)
from dfl_vfx.swap.faces import faceset_plans


def _points(shift: float) -> list[list[float]]:
    return (np.stack([np.linspace(100, 180, 68), np.linspace(50, 150, 68)], axis=1) + shift).round(4).tolist()


def _alignments() -> Alignments:
    found = {f: FrameFaces(f, [FoundFace([90.0 + i, 40.0, 190.0 + i, 160.0], 1.25, _points(i))], "ACEScg")
             for i, f in enumerate((1001, 1002, 1003))}
    found[1004] = FrameFaces(1004, error="plate.1004.exr: truncated")
    found[1005] = FrameFaces(1005, warnings=["frame 1005: 3 NaN/Inf value(s) in plate.1005.exr treated as 0"])
    tracks = {f: [TrackedFace(f"plate.{f}_0", 0, 0, frame.faces[0].rect, 1.25, _points(i + 0.5), _points(i))]
              for i, (f, frame) in enumerate(sorted(found.items())[:3])}
    return Alignments({"detector": "dlib", "point": [10.0, 20.0], "min_face": 0}, found, tracks)


def test_a_round_trip_gives_back_every_field(tmp_path: Path) -> None:
    written = _alignments()
    write_alignments(tmp_path, written)  # a faceset folder: the file inside it
    again = read_alignments(tmp_path / ALIGNMENTS_FILE)
    assert again == written
    assert again.tracks[1002][0].landmarks_array().shape == (68, 2)
    assert again.tracks[1002][0].landmarks_array()[0, 0] == 101.5
    assert not [p for p in tmp_path.iterdir() if p.name != ALIGNMENTS_FILE]  # no temporary file left


def test_the_layout_that_extract_has_always_written(tmp_path: Path) -> None:
    write_alignments(tmp_path, _alignments())
    data = json.loads((tmp_path / ALIGNMENTS_FILE).read_text())
    assert (data["format"], data["version"]) == ("dfl_vfx.alignments", 1)
    assert list(data["frames"]) == ["1001", "1002", "1003", "1004", "1005"]
    assert data["frames"]["1002"]["faces"][0]["rect"] == [91.0, 40.0, 191.0, 160.0]
    assert data["frames"]["1004"] == {"frame": 1004, "faces": [], "plate_colorspace": "", "warnings": [],
                                      "error": "plate.1004.exr: truncated"}
    assert set(data["tracks"]["1003"][0]) == {"name", "face_index", "track_id", "rect", "score", "landmarks",
                                              "raw_landmarks"}
    assert data["tracks"]["1003"][0]["raw_landmarks"][0] == [102.0, 52.0]


def _corrupt(data: dict, how: str) -> str:
    if how == "truncated":
        return json.dumps(data)[:500]
    if how == "other format":
        data["format"] = "dfl_vfx.swap_summary"
    elif how == "newer":
        data["version"] = 2
    elif how == "no landmarks":
        del data["tracks"]["1002"][0]["landmarks"]
    elif how == "short landmarks":
        data["frames"]["1003"]["faces"][0]["landmarks"] = data["frames"]["1003"]["faces"][0]["landmarks"][:5]
    elif how == "frame key":
        data["tracks"]["first"] = data["tracks"].pop("1001")
    return json.dumps(data)


@pytest.mark.parametrize("how,reason", [
    ("truncated", "not alignments JSON"),
    ("other format", "not a dfl_vfx alignments file"),
    ("newer", "alignments version 2, this dfl_vfx .* reads up to 1; update dfl_vfx"),
    ("no landmarks", r"malformed alignments at tracks of frame 1002, face 0 \(no 'landmarks'\)"),
    ("short landmarks", r"malformed alignments at frame 1003, face 0 \(landmarks must be 68 finite \(x, y\) points"),
    ("frame key", "malformed alignments at tracks of frame first"),
])
def test_a_malformed_file_is_one_line_naming_it(tmp_path: Path, how: str, reason: str) -> None:
    write_alignments(tmp_path, _alignments())
    path = tmp_path / ALIGNMENTS_FILE
    path.write_text(_corrupt(json.loads(path.read_text()), how))
    with pytest.raises(DflError, match=reason) as info:
        read_alignments(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "dfl-vfx extract" in message


def test_a_missing_file_says_to_extract(tmp_path: Path) -> None:
    with pytest.raises(DflError, match=r"alignments.json: no such file; run `dfl-vfx extract PLATE --out "):
        read_alignments(tmp_path / ALIGNMENTS_FILE)


def test_swap_reads_the_tracks_and_refuses_a_malformed_file_in_one_line(tmp_path: Path) -> None:
    write_alignments(tmp_path, _alignments())
    plans = faceset_plans(tmp_path, [1001, 1002, 1004])
    assert [len(plans[f]) for f in (1001, 1002, 1004)] == [1, 1, 0]
    np.testing.assert_allclose(plans[1002][0].landmarks[0], [101.5, 51.5])
    np.testing.assert_allclose(plans[1002][0].motion, [1.0, 1.0])  # the track moves one pixel a frame
    path = tmp_path / ALIGNMENTS_FILE
    path.write_text(_corrupt(json.loads(path.read_text()), "no landmarks"))
    with pytest.raises(DflError, match=f"^{path}: malformed alignments at tracks of frame 1002"):
        faceset_plans(tmp_path, [1001])
