"""Bad input gives a Blender report of one line naming what to fix, never a traceback: a missing engine, a missing
model, a plate that is not an image sequence, a cache folder that cannot be written; at render time the same
problems are one line on stderr and the render goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
import pytest
from blender_comp import FIRST, LAST, comp_over_plate, set_render


def bake_report(capfd: pytest.CaptureFixture[str], node: Any) -> str:
    """The ERROR report of Bake Frame (bpy.ops raises it as RuntimeError), checked to be one line without a
    traceback anywhere in the output."""
    with pytest.raises(RuntimeError) as raised:
        bpy.ops.dfl.bake_frame(node_name=node.name)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    message = str(raised.value).strip()
    assert message.startswith("Error: ") and "\n" not in message, message
    return message


@pytest.fixture()
def node(addon: Any, demo_plate: Path, model: Path, tmp_path: Path) -> Any:
    return comp_over_plate(bpy.context.scene, demo_plate / f"plate.{FIRST}.exr", FIRST, LAST, model,
                           tmp_path / "cache", "DFL Errors")


def test_missing_engine(node: Any, capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from dfl_blender import prefs

    engine = prefs.preferences().engine
    prefs.preferences().engine = str(tmp_path / "nowhere" / "dfl-vfx")
    try:
        message = bake_report(capfd, node)
    finally:
        prefs.preferences().engine = engine
    assert "DFL Errors: the dfl-vfx engine: the engine path" in message and "nowhere/dfl-vfx" in message
    assert "preferences" in message


def test_missing_model(node: Any, capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    node.node_tree.dfl.model = str(tmp_path / "no_model.onnx")
    assert "model " + str(tmp_path / "no_model.onnx") + " does not exist" in bake_report(capfd, node)
    node.node_tree.dfl.model = ""
    assert "no model; set Model" in bake_report(capfd, node)


def test_plate_that_is_not_an_image_sequence(node: Any, capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plate_node = node.inputs["Image"].links[0].from_node
    still = bpy.data.images.new("still", 8, 8)
    still.filepath_raw = str(tmp_path / "still.png")
    still.file_format = "PNG"
    still.save()
    plate_node.image = bpy.data.images.load(str(tmp_path / "still.png"))
    assert "the plate 'still.png' is not an EXR sequence" in bake_report(capfd, node)
    plate_node.image = bpy.data.images.new("generated", 8, 8)
    assert "is a generated image, not an image sequence" in bake_report(capfd, node)
    node.id_data.links.remove(node.inputs["Image"].links[0])  # the compositor tree holding the node
    assert "its Image input must come from an Image node" in bake_report(capfd, node)


def test_cache_folder_that_cannot_be_written(node: Any, capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    node.node_tree.dfl.cache_root = str(blocker / "cache")
    message = bake_report(capfd, node)
    assert f"Cache folder {blocker / 'cache'} cannot be written (Not a directory)" in message


def test_render_time_problem_is_one_line_and_the_render_goes_on(node: Any, capfd: pytest.CaptureFixture[str],
                                                                tmp_path: Path) -> None:
    scene = bpy.context.scene
    node.node_tree.dfl.render_bake = True
    node.node_tree.dfl.model = str(tmp_path / "no_model.onnx")
    scene.frame_current = FIRST
    set_render(scene, 2048, 1208, tmp_path / "render.exr")
    bpy.ops.render.render(write_still=True)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.startswith("DFL Swap:")]
    assert lines and all("no_model.onnx does not exist" in line for line in lines)
    assert (tmp_path / "render.exr").is_file()
