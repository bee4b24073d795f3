"""px_per_unit (the live erode and blur's scale) from the node's cache when it was filled outside Nuke: the farm's
``dfl-vfx swap`` (the real engine CLI, on the small demo shot) then the script loaded (``onCreate``) or rendered
(``beforeRender``); a node without a cache, and headers that cannot be read, keep the knob's value."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio
import pytest

ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))
NUKE_PLUGIN = Path(__file__).resolve().parents[2] / "nuke"
FRAMES = (1001, 1002)


def _faces(path: Path) -> list[dict[str, Any]]:
    """The ``dfl_vfx:faces`` header, read by OpenImageIO (not by the code under test)."""
    image = oiio.ImageInput.open(str(path))
    assert image is not None, oiio.geterror()
    try:
        return json.loads(image.spec().getattribute("dfl_vfx:faces"))
    finally:
        image.close()


def _largest_unit(path: Path) -> float:
    largest = max(_faces(path), key=lambda f: (f["bbox"][2] - f["bbox"][0]) * (f["bbox"][3] - f["bbox"][1]))
    return float(largest["px_per_unit"])


def _load(nuke: Any, node: Any) -> None:
    """What Nuke runs for the node as it loads the script (the gizmo's onCreate)."""
    from dfl_nuke import swap_node

    nuke.current["node"] = node
    swap_node.on_create()


@pytest.fixture(scope="module")
def farm_bake(small_shot: Path, swap_model: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The node's Farm command (through the fake nuke and `dfl-vfx serve`), run as the farm would: the engine CLI
    in its own process. The bake folder's pattern (plate.####.exr)."""
    import fake_nuke
    from dfl_nuke import swap_node

    fake_nuke.reset()
    node = _swap_node(fake_nuke, small_shot, swap_model[1], tmp_path_factory.mktemp("farm_cache"))
    fake_nuke.current["node"] = node
    swap_node.show_farm_command()
    swap_node.close_clients()
    assert len(fake_nuke.messages) == 1 and "swap" in fake_nuke.messages[0], fake_nuke.messages
    command = shlex.split(fake_nuke.messages[0])
    assert command[0] == ENGINE and f"--frames={FRAMES[0]}-{FRAMES[1]}" in command
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    pattern = Path(node["bake_file"].value())
    fake_nuke.reset()
    return pattern


def _swap_node(nuke: Any, small_shot: Path, model: Path, cache: Path, cls: str = "DFLSwap") -> Any:
    read = nuke.nodes.Read(file=str(small_shot / "plate" / "plate.%04d.exr"), first=1001, last=1012,
                           on_error="error", colorspace="default (linear)", raw=False)
    node = nuke.createNode(cls)
    node.setInput(0, read)
    for name, value in (("model", str(model)), ("engine", ENGINE), ("cache_root", str(cache)),
                        ("first_frame", FRAMES[0]), ("last_frame", FRAMES[-1]), ("device", "cpu"),
                        ("backend", "onnxruntime")):
        node[name].setValue(value)
    return node


def _pointed_at(nuke: Any, pattern: Path, cls: str = "DFLSwap", unit: float = 1.0) -> Any:
    """A node as the saved script gives it back: pointing at the bake, px_per_unit as saved."""
    node = nuke.createNode(cls)
    for name, value in (("bake_file", str(pattern)), ("bake_hash", pattern.parent.name), ("bake_first", FRAMES[0]),
                        ("bake_last", FRAMES[-1]), ("px_per_unit", unit)):
        node[name].setValue(value)
    return node


def _frame(pattern: Path, frame: int, layers: bool = False) -> Path:
    name = pattern.name.replace("####", f"{frame:04d}")
    return pattern.parent / "layers" / name if layers else pattern.parent / name


@pytest.mark.parametrize("cls", ["DFLSwap", "DFLMask"])
def test_a_farm_baked_node_takes_the_first_frame_s_px_per_unit_on_load(nuke: Any, farm_bake: Path,
                                                                       cls: str) -> None:
    expected = _largest_unit(_frame(farm_bake, FRAMES[0]))
    assert _largest_unit(_frame(farm_bake, FRAMES[0], layers=True)) == expected  # both files hold the faces
    assert abs(expected - 1) > 0.1, "the demo face must size the erode differently from a never-baked node"
    node = _pointed_at(nuke, farm_bake, cls)
    _load(nuke, node)
    assert node["px_per_unit"].value() == pytest.approx(expected, rel=1e-12)
    assert nuke.messages == []


def test_a_value_as_the_script_saved_it_is_left_alone(nuke: Any, farm_bake: Path) -> None:
    """Nuke saves doubles in fewer digits: a value equal to 1e-6 is not set again (the script stays unmodified)."""
    saved = float(f"{_largest_unit(_frame(farm_bake, FRAMES[0])):.8g}")
    node = _pointed_at(nuke, farm_bake, unit=saved)
    _load(nuke, node)
    assert node["px_per_unit"].value() == saved


def test_before_a_render_every_dfl_node_is_refreshed(nuke: Any, farm_bake: Path, tmp_path: Path) -> None:
    """init.py registers the refresh before a Write renders: frames the farm wrote after the script was loaded."""
    import runpy

    runpy.run_path(str(NUKE_PLUGIN / "init.py"))
    assert len(nuke.before_renders) == 1
    swap, mask = _pointed_at(nuke, farm_bake), _pointed_at(nuke, farm_bake, "DFLMask")
    uncached = _pointed_at(nuke, tmp_path / "none" / "plate.####.exr", unit=0.5)
    nuke.nodes.Write(file=str(tmp_path / "comp.####.exr"))
    nuke.before_renders[0]()
    expected = _largest_unit(_frame(farm_bake, FRAMES[0]))
    assert swap["px_per_unit"].value() == mask["px_per_unit"].value() == pytest.approx(expected, rel=1e-12)
    assert uncached["px_per_unit"].value() == 0.5


def test_the_delivered_frame_or_the_layers_file_whichever_is_there(nuke: Any, farm_bake: Path,
                                                                   tmp_path: Path) -> None:
    copy = tmp_path / "bake"
    shutil.copytree(farm_bake.parent, copy)
    pattern = copy / farm_bake.name
    first, second = (_largest_unit(_frame(pattern, f)) for f in FRAMES)
    assert first != pytest.approx(second, rel=1e-9), "the two demo frames must tell which one was read"
    _frame(pattern, FRAMES[0], layers=True).unlink()  # the delivered frame only
    node = _pointed_at(nuke, pattern)
    _load(nuke, node)
    assert node["px_per_unit"].value() == pytest.approx(first, rel=1e-12)
    layers_only = tmp_path / "layers_only"
    (layers_only / "layers").mkdir(parents=True)
    shutil.copyfile(_frame(farm_bake, FRAMES[0], layers=True), _frame(layers_only / farm_bake.name, FRAMES[0],
                                                                      layers=True))
    node = _pointed_at(nuke, layers_only / farm_bake.name)
    _load(nuke, node)
    assert node["px_per_unit"].value() == pytest.approx(first, rel=1e-12)
    # the first frame cut short (the farm still writing it): the next frame's header counts
    _frame(pattern, FRAMES[0]).write_bytes(_frame(pattern, FRAMES[0]).read_bytes()[:300])
    node = _pointed_at(nuke, pattern)
    _load(nuke, node)
    assert node["px_per_unit"].value() == pytest.approx(second, rel=1e-12)
    assert nuke.messages == []


def test_a_node_without_a_cache_keeps_its_value(nuke: Any, tmp_path: Path) -> None:
    never = nuke.createNode("DFLSwap")
    _load(nuke, never)
    assert never["px_per_unit"].value() == 1.0
    for pattern in (tmp_path / "gone" / "plate.####.exr", tmp_path / "plate.####.exr"):
        node = _pointed_at(nuke, pattern, unit=0.75)
        (tmp_path / "plate.0999.exr").write_bytes(b"outside the bake range")
        _load(nuke, node)
        assert node["px_per_unit"].value() == 0.75
    assert nuke.messages == []


def _exr(path: Path, faces: str | None) -> None:
    spec = oiio.ImageSpec(4, 4, 4, oiio.HALF)
    if faces is not None:
        spec.attribute("dfl_vfx:faces", faces)
    out = oiio.ImageOutput.create(str(path))
    assert out is not None and out.open(str(path), spec), oiio.geterror()
    out.write_image(np.zeros((4, 4, 4), np.float16))
    out.close()


@pytest.mark.parametrize("case", ["cut short", "not exr", "no header", "not json", "wrong shape", "no face",
                                  "not finite"])
def test_an_unreadable_header_is_ignored(nuke: Any, tmp_path: Path, case: str) -> None:
    path = tmp_path / "plate.1001.exr"
    faces = {"not json": "[{", "wrong shape": json.dumps([{"bbox": 3, "px_per_unit": 2}]), "no face": "[]",
             "not finite": json.dumps([{"bbox": [0, 0, 4, 4], "px_per_unit": float("inf")}])}
    _exr(path, faces.get(case, json.dumps([{"bbox": [0, 0, 4, 4], "px_per_unit": 2.5}])))
    if case == "cut short":
        path.write_bytes(path.read_bytes()[:100])
    elif case == "not exr":
        path.write_text("a render log, not a frame\n")
    elif case == "no header":
        _exr(path, None)
    node = _pointed_at(nuke, tmp_path / "plate.####.exr", unit=0.75)
    _load(nuke, node)
    assert node["px_per_unit"].value() == 0.75
    assert nuke.messages == []


def test_a_well_formed_header_of_a_hand_written_frame(nuke: Any, tmp_path: Path) -> None:
    """The largest face (by bbox area) counts, as for a bake in Nuke; frame numbers past the padding read too."""
    faces = [{"bbox": [0, 0, 10, 10], "px_per_unit": 0.5}, {"bbox": [0, 0, 40, 30], "px_per_unit": 1.75}]
    _exr(tmp_path / "plate.10001.exr", json.dumps(faces))
    node = _pointed_at(nuke, tmp_path / "plate.####.exr")
    node["bake_last"].setValue(10001)
    _load(nuke, node)
    assert node["px_per_unit"].value() == 1.75
