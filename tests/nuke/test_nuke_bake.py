"""End to end with the fake ``nuke`` and the real engine (``dfl-vfx serve``) on the small demo shot: bake a range,
the cache and the gizmo's Read path, re-bake after a network knob, no re-bake for a live knob, and a cancel."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import OpenImageIO as oiio
import pytest

ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))
FRAMES = (1001, 1002)


def _swap_node(nuke: Any, small_shot: Path, model: Path, cache: Path) -> Any:
    read = nuke.nodes.Read(file=str(small_shot / "plate" / "plate.%04d.exr"), first=1001, last=1012,
                           on_error="error", colorspace="default (linear)", raw=False)
    node = nuke.createNode("DFLSwap")
    node.setInput(0, read)
    for name, value in (("model", str(model)), ("engine", ENGINE), ("cache_root", str(cache)),
                        ("first_frame", FRAMES[0]), ("last_frame", FRAMES[-1]), ("device", "cpu"),
                        ("backend", "onnxruntime")):
        node[name].setValue(value)
    nuke.current["node"] = node
    return node


def _bake(nuke: Any, node: Any) -> None:
    from dfl_nuke import swap_node

    nuke.current["node"] = node
    worker = swap_node.bake_range()
    assert worker is not None, nuke.messages
    worker.join(timeout=180)
    assert not worker.is_alive()


def _frames(node: Any) -> list[Path]:
    pattern = node["bake_file"].value()
    return [Path(pattern.replace("####", f"{frame:04d}")) for frame in FRAMES]


def _layers(path: Path) -> Path:
    """What the gizmo's Read reads for a baked frame: its layers file (the Tcl of nuke_gizmo.LAYERS_FILE)."""
    return path.parent / "layers" / path.name


def _channels(path: Path) -> list[str]:
    image = oiio.ImageInput.open(str(path))
    assert image is not None, oiio.geterror()
    try:
        return list(image.spec().channelnames)
    finally:
        image.close()


def _header(path: Path, name: str) -> str:
    image = oiio.ImageInput.open(str(path))
    assert image is not None, oiio.geterror()
    try:
        return str(image.spec().getattribute(name))
    finally:
        image.close()


def test_bake_range_then_live_and_re_bake_knobs(nuke: Any, small_shot: Path, swap_model: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    from dfl_nuke import swap_node

    node = _swap_node(nuke, small_shot, swap_model[1], tmp_path / "cache")
    _bake(nuke, node)
    assert nuke.messages == []
    first = _frames(node)
    # the cache: <root>/<script>/<node>/<hash>/plate.####.exr, one file per frame, and its layers in layers/
    assert first[0].parent.parent == tmp_path / "cache" / "untitled" / "DFLSwap1"
    assert first[0].parent.name == node["bake_hash"].value() and len(node["bake_hash"].value()) == 12
    for path in first:
        assert path.is_file() and {"R", "G", "B", "A"} <= set(_channels(path))
        assert _channels(_layers(path)) == ["matte.A", "raw.R", "raw.G", "raw.B", "raw.A"]
    # Nuke honours data windows: the layers file holds only the face's box
    box = json.loads(_header(first[0], "dfl_vfx:faces"))[0]["bbox"]
    layers = oiio.ImageInput.open(str(_layers(first[0])))
    spec = layers.spec()
    layers.close()
    assert [spec.x, spec.y, spec.x + spec.width, spec.y + spec.height] == box
    assert (node["bake_first"].value(), node["bake_last"].value()) == FRAMES
    faces = json.loads(_header(first[0], "dfl_vfx:faces"))
    assert faces, "the demo shot has a face on frame 1001"
    largest = max(faces, key=lambda f: (f["bbox"][2] - f["bbox"][0]) * (f["bbox"][3] - f["bbox"][1]))
    assert node["px_per_unit"].value() == pytest.approx(largest["px_per_unit"], rel=1e-12)
    assert 0.05 < node["px_per_unit"].value() < 20
    assert node["stale"].value() is False
    assert "finish" in nuke.main_thread_calls
    assert nuke.ProgressTask.instances[-1].progress[-1] == 100
    stamps = [p.stat().st_mtime_ns for p in first]

    # a live knob: no stale mark, and the same cache folder (a bake would find its frames done)
    nuke.current["knob"] = node["blur"]
    node["blur"].setValue(60)
    swap_node.knob_changed()
    assert node["stale"].value() is False
    bake = swap_node.Bake(node)
    assert bake.cache.folder == str(first[0].parent)

    # a re-bake knob: stale, and the next bake goes to a new folder; the old bake stays
    nuke.current["knob"] = node["color_transfer"]
    node["color_transfer"].setValue("none")
    swap_node.knob_changed()
    assert node["stale"].value() is True and node["tile_color"].value() == swap_node.STALE_COLOR
    _bake(nuke, node)
    assert nuke.messages == []
    second = _frames(node)
    assert second[0].parent != first[0].parent and all(p.is_file() for p in second)
    assert [p.stat().st_mtime_ns for p in first] == stamps
    assert node["stale"].value() is False and node["stale_label"].value() == ""


def test_a_cancelled_bake_leaves_no_half_written_frame(nuke: Any, small_shot: Path, swap_model: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    node = _swap_node(nuke, small_shot, swap_model[1], tmp_path / "cache")
    node["last_frame"].setValue(1012)
    nuke.cancel_after["progress"] = 1  # the compositor presses Cancel after the first frame
    _bake(nuke, node)
    assert nuke.messages == []
    assert node["bake_hash"].value() == ""  # the node was not pointed at a partial bake
    written = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.suffix == ".exr"]
    frames = [p for p in written if p.parent.name != "layers"]
    assert 1 <= len(frames) < 12, written
    for path in written:
        assert not path.name.startswith("."), path  # no temp left behind
    for path in frames:  # every frame under a real name is complete, and so is its layers file
        assert "R" in _channels(path) and "matte.A" in _channels(_layers(path))


def test_failed_frames_are_a_message_and_the_node_is_not_pointed_at_them(
        nuke: Any, small_shot: Path, swap_model: tuple[Path, Path], tmp_path: Path) -> None:
    node = _swap_node(nuke, small_shot, swap_model[1], tmp_path / "cache")
    node.input(0)["colorspace"].setValue("No Such Space")
    _bake(nuke, node)
    assert len(nuke.messages) == 1 and "\n" not in nuke.messages[0]
    assert "2 of 2 frames failed (frame 1001: unknown colorspace 'No Such Space'" in nuke.messages[0]
    assert node["bake_hash"].value() == "" and node["bake_file"].value() == ""


def test_bake_frame_goes_through_serve_and_points_the_read_at_it(
        nuke: Any, small_shot: Path, swap_model: tuple[Path, Path], tmp_path: Path) -> None:
    from dfl_nuke import swap_node

    node = _swap_node(nuke, small_shot, swap_model[1], tmp_path / "cache")
    nuke.current["frame"] = 1003
    swap_node.bake_frame()
    assert nuke.messages == []
    baked = Path(node["bake_file"].value().replace("####", "1003"))
    assert baked.is_file() and "matte.A" in _channels(_layers(baked))
    assert (node["bake_first"].value(), node["bake_last"].value()) == (1003, 1003)
    # the same engine answers the next click: the model stays loaded
    clients = list(swap_node._clients.values())
    nuke.current["frame"] = 1004
    swap_node.bake_frame()
    assert list(swap_node._clients.values()) == clients and nuke.messages == []
    assert Path(node["bake_file"].value().replace("####", "1004")).is_file()


def test_a_non_read_input_is_rendered_to_exrs_first(nuke: Any, small_shot: Path, swap_model: tuple[Path, Path],
                                                    tmp_path: Path, monkeypatch: Any) -> None:
    import shutil

    node = _swap_node(nuke, small_shot, swap_model[1], tmp_path / "cache")
    grade = nuke.nodes.Grade()
    grade.setInput(0, node.input(0))
    node.setInput(0, grade)
    writes: list[dict] = []

    def execute(write: Any, first: int, last: int, incr: int = 1) -> None:  # Nuke renders the Write's frames
        writes.append({k: write[k].value() for k in ("file", "file_type", "raw", "channels")} | {
            "input": write.input(0).name(), "range": (first, last)})
        for frame in range(first, last + 1):
            target = Path(write["file"].value().replace("####", f"{frame:04d}"))
            shutil.copyfile(small_shot / "plate" / f"plate.{frame:04d}.exr", target)

    monkeypatch.setattr(nuke, "execute", execute)
    _bake(nuke, node)
    assert nuke.messages == []
    assert len(writes) == 1 and writes[0]["input"] == "Grade1" and writes[0]["range"] == FRAMES
    assert writes[0]["file_type"] == "exr" and writes[0]["raw"] is True and writes[0]["channels"] == "rgba"
    assert "Write1" not in nuke.all_nodes  # the temporary Write is deleted
    assert all(path.is_file() for path in _frames(node))
    assert Path(node["bake_file"].value()).name == "input.####.exr"


def test_the_farm_command_bakes_what_the_node_reads(nuke: Any, small_shot: Path, swap_model: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    import shlex
    import subprocess

    from dfl_nuke import swap_node

    node = _swap_node(nuke, small_shot, swap_model[1], tmp_path / "cache")
    node["mask_mode"].setValue("learned-prd + hull")  # spaces stay inside one argument
    swap_node.show_farm_command()
    assert len(nuke.messages) == 1
    command = shlex.split(nuke.messages[0])
    assert command[:2] == [ENGINE, "swap"] and "--mask-mode=learned-prd + hull" in command
    assert "--layers=rgba,matte,raw" in command and "--frames=1001-1002" in command
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    frames = _frames(node)  # the node was pointed at the folder the farm job wrote
    stamps = [p.stat().st_mtime_ns for p in frames]
    nuke.messages.clear()
    _bake(nuke, node)  # the same bake from Nuke finds the farm's frames done
    assert nuke.messages == [] and _frames(node) == frames
    assert [p.stat().st_mtime_ns for p in frames] == stamps
