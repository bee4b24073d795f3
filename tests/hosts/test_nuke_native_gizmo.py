"""DFLSwapNative: the committed gizmo is the generated one, it parses and is wired as the native path needs, and the
alignment pins put the engine's crop where Nuke's CornerPin2D reads it (checked with an OpenCV warp)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.align import get_transform_mat
from dfl_vfx.face.crop import crop_face_at
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.template import TEMPLATE_INDICES, TEMPLATE_POINTS
from dfl_vfx.faceset.alignments import Alignments, TrackedFace, write_alignments
from dfl_vfx.hosts import nk
from dfl_vfx.hosts.nuke_native_gizmo import GIZMO_DIR, GIZMO_FILE, PIN_KNOBS, Display, alignment, gizmo_text

RES = 64


def _gizmo() -> nk.Node:
    return next(s for s in nk.parse(gizmo_text()) if isinstance(s, nk.Node) and s.cls == "Gizmo")


def test_committed_gizmo_is_the_generated_one_and_round_trips() -> None:
    committed = (GIZMO_DIR / GIZMO_FILE).read_text(encoding="utf-8")
    assert committed == gizmo_text(), "DFLSwapNative.gizmo is stale: python -m dfl_vfx.hosts.nuke_native_gizmo"
    body = committed.split("\n", 1)[1]  # without the generated-by comment
    assert nk.write(nk.parse(committed)) == body


def test_inner_graph_aligns_infers_pastes_back_and_merges_over_the_plate() -> None:
    gizmo = _gizmo()
    wiring = {name: [n.name if n else None for n in w.inputs] for name, w in nk.graph(gizmo.children).items()}
    assert wiring["plate"] == []
    assert wiring["AlignPin"] == ["plate"]
    assert wiring["AlignedFace"] == ["AlignPin"] and wiring["FaceInference"] == ["AlignedFace"]
    assert wiring["MaskErode"] == ["FaceInference"] and wiring["MaskBlur"] == ["MaskErode"]
    assert wiring["PasteBack"] == ["MaskBlur"] and wiring["MaskOpacity"] == ["PasteBack"]
    assert wiring["FacePremult"] == ["MaskOpacity"]
    assert wiring["FaceOverPlate"] == ["plate", "FacePremult"]  # Merge2: B (input 0) the plate, A the face
    assert wiring["MaskToOutput"] == ["FaceOverPlate", "FacePremult"] and wiring["Output1"] == ["MaskToOutput"]
    children = {n.name: n for n in gizmo.children if isinstance(n, nk.Node)}
    assert children["FaceInference"].cls == "Inference"
    assert children["FaceInference"].value("modelFile") == "[value parent.cat_file]"
    assert children["FaceInference"].value("useGPUIfAvailable") == "{parent.use_gpu}"
    assert (children["AlignPin"].value("invert"), children["PasteBack"].value("invert")) == ("false", "true")
    for pin in ("AlignPin", "PasteBack"):  # the same pins both ways
        assert [children[pin].value(f"from{i}") for i in range(1, 5)] == \
            [f"{{parent.pin{i}_x}} {{parent.pin{i}_y}}" for i in range(1, 5)]
        assert children[pin].value("to3") == "{parent.resolution} {parent.resolution}"
    assert children["AlignedFace"].value("reformat") == "true"
    assert children["FaceOverPlate"].value("operation") == "over"
    # every parent.X an inner node reads is a knob of the gizmo, and the Python writes the baked ones
    knobs = {k.name for k in gizmo.user_knobs}
    read = {name for node in children.values() for knob in node.knobs
            for name in re.findall(r"parent\.([A-Za-z_]\w*)", knob.value)}
    assert set(PIN_KNOBS) | {"resolution", "cat_file", "use_gpu", "face_present", "erode", "blur", "opacity"} == read
    assert read <= knobs
    assert {"faceset", "model", "track", "engine", "bake_alignment", "status"} <= knobs


def face_landmarks(centre: tuple[float, float], size: float, angle_deg: float, seed: int = 0) -> np.ndarray:
    """68 landmarks whose alignment points are the DFL template under a similarity (size px, angle), plus noise."""
    rng = np.random.default_rng(seed)
    a = math.radians(angle_deg)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    template = (np.asarray(TEMPLATE_POINTS, np.float64) - 0.5) * size @ rotation.T + np.array(centre)
    landmarks = np.tile(np.array(centre, np.float64), (68, 1)) + rng.normal(0, size * 0.2, (68, 2))
    landmarks[list(TEMPLATE_INDICES)] = template + rng.normal(0, 0.3, template.shape)
    return landmarks


def write_faceset(folder: Path, faces: dict[int, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tracks = {frame: [TrackedFace(f"plate.{frame}_0", 0, 0, [float(v) for v in (*lm.min(0), *lm.max(0))], 1.0,
                                  lm.tolist(), lm.tolist())] for frame, lm in faces.items()}
    write_alignments(folder, Alignments(tracks=tracks))
    return folder


def nuke_to_cv_warp(pins: np.ndarray, size: int, display: Display) -> np.ndarray:
    """The 2x3 OpenCV plate -> crop matrix that a CornerPin2D from ``pins`` to the R x R square applies, written out
    from Nuke's conventions (origin at the display window's bottom-left, y up, pixel centres at +0.5)."""
    square = np.array([(0, 0), (size, 0), (size, size), (0, size)], np.float64)
    rows, rhs = [], []
    for (x, y), (u, v) in zip(pins, square, strict=True):  # the corner pin's homography, solved in float64
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    homography = np.append(np.linalg.solve(np.array(rows), np.array(rhs)), 1.0).reshape(3, 3)
    plate_to_nuke = np.array([[1, 0, 0.5 - display.x], [0, -1, display.y + display.height - 0.5], [0, 0, 1]])
    crop_to_nuke = np.array([[1, 0, 0.5], [0, -1, size - 0.5], [0, 0, 1]])
    full = np.linalg.inv(crop_to_nuke) @ homography @ plate_to_nuke
    full /= full[2, 2]
    assert np.abs(full[2, :2]).max() < 1e-6  # four corners of an affine map: no perspective
    return full[:2]


@pytest.mark.parametrize("display", [Display(0, 0, 640, 360), Display(-20, 10, 700, 400)])
def test_pins_reproduce_the_engine_crop_with_an_opencv_warp(tmp_path: Path, display: Display) -> None:
    rng = np.random.default_rng(1)
    plate = cv2.GaussianBlur(rng.uniform(0, 4, (360, 640, 3)).astype(np.float32), (0, 0), 3)  # a textured plate
    origin = (display.x, display.y)  # the data window starts at the display window here
    faces = {1001: face_landmarks((300, 170), 150, 12), 1002: face_landmarks((330, 180), 140, -20, seed=2)}
    faceset = write_faceset(tmp_path / "faceset", faces)
    answer = alignment(faceset, RES, "f", display, frames=[1001, 1002, 1003])
    assert answer["missing"] == [1003] and [e["frame"] for e in answer["frames"]] == [1001, 1002]
    for entry in answer["frames"]:
        landmarks = faces[entry["frame"]]
        engine = get_transform_mat(landmarks, RES, FaceType.parse("f"))
        np.testing.assert_allclose(entry["matrix"], engine, atol=1e-9)
        recovered = nuke_to_cv_warp(np.array(entry["pins"]), RES, display)
        # the pins round-trip the engine's matrix
        np.testing.assert_allclose(recovered, engine, rtol=0, atol=1e-9)
        expected = crop_face_at(plate, None, origin, engine, RES)
        got = crop_face_at(plate, None, origin, recovered, RES)
        # the same lanczos warp with the recovered matrix: stated tolerance 1e-5 on values up to 4
        assert np.abs(got - expected).max() < 1e-5
        assert expected.std() > 0.05  # a crop with texture, so the comparison can fail


def test_alignment_follows_a_track_and_refuses_an_empty_answer(tmp_path: Path) -> None:
    faces = {1: face_landmarks((300, 170), 150, 0)}
    faceset = write_faceset(tmp_path / "fs", faces)
    with pytest.raises(DflError, match="no face of track 3"):
        alignment(faceset, RES, "f", Display(0, 0, 640, 360), track=3)
    assert alignment(faceset, RES, "wf", Display(0, 0, 640, 360), track=0)["face_type"] == "whole_face"
