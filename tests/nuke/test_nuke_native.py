"""DFLSwapNative's Bake alignment with the fake ``nuke`` and the real engine (``dfl-vfx host matrices``): the curves
it writes reproduce the engine's crop (an OpenCV warp of the plate by the curves' pins against the engine's aligned
crop), and every problem is one Nuke message, never a traceback."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dfl_vfx.face.align import get_transform_mat
from dfl_vfx.face.crop import crop_face_at
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.hosts.nuke_native_gizmo import Display
from dfl_vfx.io.image import read_image

ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))
# the synthetic faceset and the float64 corner-pin solve of the gizmo's own test
HELPERS = runpy.run_path(str(Path(__file__).resolve().parents[1] / "hosts" / "test_nuke_native_gizmo.py"))
FRAMES = (1001, 1002, 1003)


@pytest.fixture(scope="module")
def torchscript_model(swap_model: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dfl_vfx.export.torchscript_export import export_torchscript
    from dfl_vfx.models.checkpoint import load_model

    model, _ = load_model(swap_model[0])
    return export_torchscript(model, tmp_path_factory.mktemp("pt") / "face model.pt", iterations=0)


def _native_node(nuke: Any, plate: str, model: Path, faceset: Path) -> Any:
    read = nuke.nodes.Read(file=plate, first=1001, last=1012)
    node = nuke.createNode("DFLSwapNative")
    node.setInput(0, read)
    for name, value in (("model", str(model)), ("faceset", str(faceset)), ("engine", ENGINE),
                        ("first_frame", FRAMES[0]), ("last_frame", FRAMES[-1])):
        node[name].setValue(value)
    nuke.current["node"] = node
    return node


def _keys(script: str) -> dict[int, float]:
    words = script.strip("{}").split()
    assert words[0] == "curve"
    return {int(words[i][1:]): float(words[i + 1]) for i in range(1, len(words), 2)}


def test_bake_alignment_curves_reproduce_the_engine_crop(nuke: Any, small_shot: Path, torchscript_model: Path,
                                                         tmp_path: Path) -> None:
    from dfl_nuke import native

    faces = {1001: HELPERS["face_landmarks"]((300, 150), 120, 8), 1002: HELPERS["face_landmarks"]((310, 155), 118, 5)}
    # a path with spaces, quotes and shell characters reaches the engine as one plain argument
    faceset = HELPERS["write_faceset"](tmp_path / 'face set "q" $(id);', faces)
    plate = str(small_shot / "plate" / "plate.%04d.exr")
    node = _native_node(nuke, plate, torchscript_model, faceset)
    native.bake_alignment()
    assert nuke.messages == []
    assert node["resolution"].value() == 64
    assert "aligned 2 frame(s) at 64 px, no face on 1 frame(s)" in node["status"].value()
    assert _keys(node["face_present"].toScript()) == {1001: 1.0, 1002: 1.0, 1003: 0.0}
    pins = {name: _keys(node[name].toScript()) for name in native.PIN_KNOBS}
    image = read_image(str(small_shot / "plate" / "plate.1001.exr"))
    display = Display(image.display_window.x, image.display_window.y, image.display_window.width,
                      image.display_window.height)
    for frame in (1001, 1002):
        plate_rgb = read_image(str(small_shot / "plate" / f"plate.{frame}.exr")).pixels[..., :3].astype(np.float32)
        corners = np.array([[pins[f"pin{i}_x"][frame], pins[f"pin{i}_y"][frame]] for i in range(1, 5)])
        warp = HELPERS["nuke_to_cv_warp"](corners, 64, display)
        engine = get_transform_mat(faces[frame], 64, FaceType.parse("f"))
        # curve values carry 6 decimals: the matrix agrees to 1e-5 (measured 8e-7)
        np.testing.assert_allclose(warp, engine, rtol=0, atol=1e-5)
        expected = crop_face_at(plate_rgb, None, (0, 0), engine, 64)
        got = crop_face_at(plate_rgb, None, (0, 0), warp, 64)
        assert expected.std() > 0.01
        # stated tolerance: 1 % of the crop's value range at any pixel (the 1e-6 px rounding of the curve can move
        # a sample across OpenCV's 1/32 px grid) and a mean difference under 1e-5 of it; measured 8.5e-4 and 2.2e-7
        span = float(expected.max() - expected.min())
        assert np.abs(got - expected).max() < 0.01 * span
        assert np.abs(got - expected).mean() < 1e-5 * span


@pytest.mark.parametrize("case", ["no faceset", "missing faceset", "no model", "missing model", "missing engine",
                                  "non-exr input", "engine error"])
def test_bake_alignment_problems_are_one_message(nuke: Any, tmp_path: Path, case: str) -> None:
    from dfl_nuke import native

    faceset = HELPERS["write_faceset"](tmp_path / "fs", {1001: HELPERS["face_landmarks"]((300, 150), 120, 0)})
    model = tmp_path / "m.pt"
    model.write_bytes(b"not torchscript")
    node = _native_node(nuke, str(tmp_path / "plate.%04d.exr"), model, faceset)
    expected = {"no faceset": "no faceset", "missing faceset": "does not exist; extract the plate first",
                "no model": "no model", "missing model": "nope.pt does not exist",
                "missing engine": "is not an executable file", "non-exr input": "plate.mov, not an EXR sequence",
                "engine error": "bake alignment failed: dfl-vfx host: error: "}[case]
    if case == "no faceset":
        node["faceset"].setValue("")
    elif case == "missing faceset":
        node["faceset"].setValue(str(tmp_path / "none"))
    elif case == "no model":
        node["model"].setValue(" ")
    elif case == "missing model":
        node["model"].setValue(str(tmp_path / "nope.pt"))
    elif case == "missing engine":
        node["engine"].setValue(str(tmp_path / "no" / "dfl-vfx"))
    elif case == "non-exr input":
        node.input(0)["file"].setValue(str(tmp_path / "plate.mov"))
    native.bake_alignment()
    assert len(nuke.messages) == 1, nuke.messages
    text = nuke.messages[0]
    assert text.startswith("DFLSwapNative1: ") and "\n" not in text and "Traceback" not in text
    assert expected in text, text


def test_a_non_read_input_gives_nuke_s_format_to_the_engine(nuke: Any) -> None:
    from dfl_nuke import native

    grade = nuke.nodes.Grade(format_size=(1920, 1080))
    node = nuke.createNode("DFLSwapNative")
    node.setInput(0, grade)
    assert native.plate_or_format(node) == (None, (1920, 1080))
    command = native.alignment_command("/e/dfl-vfx", "/f s", "/m.pt", 1, 5, -1, None, (1920, 1080))
    assert command == ["/e/dfl-vfx", "host", "matrices", "/f s", "--model=/m.pt", "--frames=1-5", "--format=1920x1080"]
    assert native.alignment_command("e", "f", "m", 1, 1, 2, "/p.####.exr")[-2:] == ["--plate=/p.####.exr", "--track=2"]
    assert native.curve([(1, 0.0), (2, 1.5), (3, -2.25), (4, 100.0)]) == "{curve x1 0 x2 1.5 x3 -2.25 x4 100}"
