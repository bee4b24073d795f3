"""The Nuke-side logic with the fake ``nuke``: settings, input checks, stale marking, messages, start-up files,
and mypy against Nuke's published API (types-nuke)."""

from __future__ import annotations

import ast
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dfl_host import Schema
from dfl_vfx.schema import schema_document

NUKE_PLUGIN = Path(__file__).resolve().parents[2] / "nuke"
REPO = NUKE_PLUGIN.parent


def _schema() -> Schema:
    return Schema(schema_document())


def test_knob_values_reach_the_engine_as_plain_values() -> None:
    from dfl_nuke.bake import knob_settings

    nasty = 'cuda:0; rm -rf ~ "$(id)" `x` \'q\''
    settings = knob_settings(_schema(), {"device": nasty, "mask_mode": " learned-prd*learned-dst ",
                                         "face_type": "default", "batch": 4.0, "blur": 12, "ocio_config": "",
                                         "color_transfer": "mkl-m"})
    assert settings == {"device": nasty.strip(), "mask_mode": "learned-prd*learned-dst", "batch": 4, "blur": 12.0,
                        "color_transfer": "mkl-m", "layers": ["rgba", "matte", "raw"], "layer_window": "face"}
    assert isinstance(settings["batch"], int)


def test_patterns_frames_and_lists() -> None:
    from dfl_nuke.bake import frame_file, frame_list, plate_pattern

    assert plate_pattern("/s/sh 010/plate.%04d.exr") == "/s/sh 010/plate.####.exr"
    assert plate_pattern("/s/plate.####.exr") == "/s/plate.####.exr"
    assert frame_file("/s/plate.####.exr", 7) == "/s/plate.0007.exr"
    assert frame_list([1005, 1001, 1002, 1003, 1007, 1008]) == "1001-1003,1005,1007-1008"


def test_px_per_unit_of_the_largest_face() -> None:
    from dfl_nuke.bake import largest_face_px_per_unit

    faces = [{"bbox": [0, 0, 10, 10], "px_per_unit": 0.5}, {"bbox": [0, 0, 40, 30], "px_per_unit": 1.75}]
    assert largest_face_px_per_unit({"attributes": {"faces": faces}}) == 1.75
    assert largest_face_px_per_unit({"attributes": {}}) is None


def _swap_node(nuke: Any, tmp_path: Path, plate: str = "", model: str = "") -> Any:
    read = nuke.nodes.Read(file=plate, first=1, last=3, on_error="black", colorspace="default (linear)", raw=False)
    node = nuke.createNode("DFLSwap")
    node.setInput(0, read)
    node["model"].setValue(model)
    node["cache_root"].setValue(str(tmp_path / "cache"))
    node["first_frame"].setValue(1)
    node["last_frame"].setValue(3)
    nuke.current["node"] = node
    return node


def test_no_button_of_the_gizmo_marks_the_node_stale() -> None:
    import re

    from dfl_nuke import swap_node

    gizmo = (Path(__file__).parents[2] / "nuke" / "gizmos" / "DFLSwap.gizmo").read_text()
    buttons = set(re.findall(r"addUserKnob \{22 (\w+)", gizmo))
    assert {"bake_frame", "bake_range", "cancel_bake", "submit_farm"} <= buttons
    assert buttons <= swap_node.NEVER_STALE


def test_a_re_bake_knob_marks_the_node_stale_a_live_knob_does_not(nuke: Any, tmp_path: Path) -> None:
    from dfl_nuke import swap_node

    node = _swap_node(nuke, tmp_path)
    node["bake_hash"].setValue("3fa2c4e1b09d")
    for name in ("erode", "blur", "opacity", "face_exposure", "showPanel"):
        nuke.current["knob"] = node.knob(name) or nuke.Knob(name)
        swap_node.knob_changed()
        assert node["stale"].value() is False, name
    nuke.current["knob"] = node["color_transfer"]
    swap_node.knob_changed()
    assert node["stale"].value() is True
    assert node["stale_label"].value() == "stale: re-bake"
    assert node["tile_color"].value() == swap_node.STALE_COLOR
    # the gizmo's label shows the warning through [value stale_label]
    assert node["label"].value() == "[value stale_label]"


def test_live_knobs_are_the_schema_s_live_settings() -> None:
    from dfl_nuke.swap_node import LIVE_KNOBS

    assert LIVE_KNOBS == set(_schema().live_names)


@pytest.mark.parametrize("case", ["no model", "missing model", "missing engine", "non-exr input", "no cache"])
def test_user_errors_are_one_nuke_message_never_a_traceback(nuke: Any, tmp_path: Path, case: str) -> None:
    from dfl_nuke import swap_node

    model = tmp_path / "model.onnx"
    model.write_bytes(b"x")
    node = _swap_node(nuke, tmp_path, str(tmp_path / "plate.####.exr"), str(model))
    if case == "no model":
        node["model"].setValue("")
    elif case == "missing model":
        node["model"].setValue(str(tmp_path / "nope.onnx"))
    elif case == "missing engine":
        node["engine"].setValue(str(tmp_path / "no" / "dfl-vfx"))
    elif case == "non-exr input":
        node.input(0)["file"].setValue(str(tmp_path / "plate.mov"))
        node["engine"].setValue(str(Path(sys.executable).with_name("dfl-vfx")))
    else:
        node["cache_root"].setValue("")
    swap_node.bake_range()
    swap_node.bake_frame()
    assert len(nuke.messages) == 2 and nuke.messages[0] == nuke.messages[1]
    text = nuke.messages[0]
    assert "\n" not in text and "Traceback" not in text and text.startswith("DFLSwap1: ")
    expected = {"no model": "no model", "missing model": "nope.onnx does not exist",
                "missing engine": "is not an executable file", "non-exr input": "plate.mov, not an EXR sequence",
                "no cache": "set Cache folder"}[case]
    assert expected in text


def test_init_is_headless_and_menu_adds_the_nodes(nuke: Any) -> None:
    runpy.run_path(str(NUKE_PLUGIN / "init.py"))
    assert nuke.plugin_paths == [str(NUKE_PLUGIN / "gizmos")]
    assert nuke.menus == {}
    runpy.run_path(str(NUKE_PLUGIN / "menu.py"))
    assert nuke.menus["Nodes"].items["DFL"].items["DFL Swap"] == "nuke.createNode('DFLSwap')"
    for label, cls in (("DFL Mask", "DFLMask"), ("DFL Swap (native)", "DFLSwapNative"), ("DFL Extract", "DFLExtract")):
        assert nuke.menus["Nodes"].items["DFL"].items[label] == f"nuke.createNode('{cls}')"
        assert nuke.menus["Nuke"].items["DFL"].items[f"Create {label}"] == f"nuke.createNode('{cls}')"
        assert (NUKE_PLUGIN / "gizmos" / f"{cls}.gizmo").is_file()  # the class a menu entry creates exists


def test_the_nuke_side_imports_only_nuke_the_standard_library_and_dfl_host() -> None:
    imported = set()
    for path in NUKE_PLUGIN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"nuke", "dfl_host", "dfl_nuke"}


def test_vermin_finds_nothing_newer_than_python_39() -> None:
    vermin = Path(sys.executable).with_name("vermin")
    done = subprocess.run([str(vermin), "-t=3.9-", "--no-tips", "--violations", str(NUKE_PLUGIN)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _mypy(folder: Path, cache: Path) -> subprocess.CompletedProcess:
    mypy = Path(sys.executable).with_name("mypy")
    env = dict(os.environ, MYPYPATH=str(REPO))
    return subprocess.run([str(mypy), f"--cache-dir={cache}", "--follow-imports=silent", "--no-error-summary",
                           "init.py", "menu.py", "dfl_nuke"], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=300)


def test_mypy_holds_the_nuke_side_to_nuke_s_published_api(tmp_path: Path) -> None:
    done = _mypy(NUKE_PLUGIN, tmp_path / "cache")
    assert done.returncode == 0, done.stdout + done.stderr
    # and it would catch a call Nuke does not have
    copy = tmp_path / "plugin"
    shutil.copytree(NUKE_PLUGIN, copy, ignore=shutil.ignore_patterns("gizmos", "__pycache__"))
    with open(copy / "dfl_nuke" / "swap_node.py", "a", encoding="utf-8") as handle:
        handle.write("\n\ndef _bogus() -> None:\n    nuke.showProgressWindow('x')\n")
    done = _mypy(copy, tmp_path / "cache")
    assert done.returncode == 1 and 'has no attribute "showProgressWindow"' in done.stdout, done.stdout


def test_read_colourspaces_as_engine_settings() -> None:
    from dfl_nuke.bake import engine_colourspace

    assert engine_colourspace("default (linear)") is None
    assert engine_colourspace("scene_linear") is None
    assert engine_colourspace("ACES - ACEScg") == "ACES - ACEScg"
    assert engine_colourspace("default (ACEScg)") == "ACEScg"


READ_KNOBS = {"file", "first", "last", "on_error", "colorspace", "raw"}  # Nuke's Read knobs the code reads


def test_every_knob_the_python_touches_exists_on_both_gizmos() -> None:
    from dfl_vfx.hosts import nk

    tree = ast.parse((NUKE_PLUGIN / "dfl_nuke" / "swap_node.py").read_text())
    touched: dict[str, set[str]] = {"node": set(), "source": set()}
    for node in ast.walk(tree):
        owner = name = None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            owner, name = node.value.id, node.slice.value
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[-1], ast.Constant) \
                and isinstance(node.args[-1].value, str):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "knob" and isinstance(func.value, ast.Name):
                owner, name = func.value.id, node.args[-1].value
            elif isinstance(func, ast.Name) and func.id == "_text" and isinstance(node.args[0], ast.Name):
                owner, name = node.args[0].id, node.args[-1].value
        if owner in touched and name is not None:
            touched[owner].add(name)
    assert touched["source"] == READ_KNOBS
    assert {"model", "cache_root", "bake_file", "px_per_unit", "stale_label", "tile_color"} <= touched["node"]
    for gizmo_file in ("DFLSwap.gizmo", "DFLMask.gizmo"):
        statements = nk.parse((NUKE_PLUGIN / "gizmos" / gizmo_file).read_text())
        gizmo = next(s for s in statements if isinstance(s, nk.Node) and s.cls == "Gizmo")
        knobs = {k.name for k in gizmo.user_knobs} | {k.name for k in gizmo.knobs}
        assert touched["node"] <= knobs, (gizmo_file, touched["node"] - knobs)
