"""Rendering with the DFL Swap node and the real engine behind it, at the demo plate's full size (data window
2048x1208, origin -64,-64): the face changes, everything away from the face is the plate, the render agrees with
the engine's own composite, render-time mode bakes missing frames, and a cancelled bake leaves only whole frames."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import bpy
import numpy as np
import pytest
from blender_comp import (
    FIRST,
    LAST,
    comp_over_plate,
    engine_python,
    engine_read_shapes,
    exr_faces,
    pixels,
    run_engine,
    set_render,
)

MARGIN = 8  # px around the engine's face boxes where Blender's one-size-per-bake erode/blur may still reach
AGREEMENT = 0.05  # the render's mean difference to the engine's composite, as a share of the swap's own change


def face_box(path: Path, origin: tuple[int, int], shape: tuple[int, int]) -> tuple[slice, slice]:
    """Rows and columns (of an array over the data window starting at ``origin``) of the union of the engine's
    face boxes in ``path``'s header, grown by MARGIN."""
    boxes = np.array([face["bbox"] for face in exr_faces(path)])
    assert len(boxes), f"{path}: the engine found no face"
    x0, y0 = boxes[:, :2].min(0) - MARGIN - np.array(origin)
    x1, y1 = boxes[:, 2:].max(0) + MARGIN - np.array(origin)
    return slice(max(0, y0), min(shape[0], y1)), slice(max(0, x0), min(shape[1], x1))


def check_frame(render: np.ndarray, plate: np.ndarray, engine: np.ndarray, rows: slice, cols: slice) -> float:
    """Assert the three claims on one frame; the render's mean difference to the engine in the face box."""
    assert render.shape == plate.shape == engine.shape
    outside = np.ones(render.shape[:2], bool)
    outside[rows, cols] = False
    # away from the face: the plate itself, to float precision
    np.testing.assert_allclose(render[outside], plate[outside], rtol=1e-6, atol=1e-6)
    change = np.abs(engine[rows, cols] - plate[rows, cols]).mean()
    assert np.abs(render[rows, cols] - plate[rows, cols]).mean() > 0.5 * change > 0.01  # the face changed
    difference = np.abs(render[rows, cols] - engine[rows, cols]).mean()
    assert difference < AGREEMENT * change, (difference, change)
    return float(difference)


@pytest.fixture(scope="module")
def baked(addon: Any, demo_plate: Path, model: Path, cache_root: Path,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Frames 1001-1003 baked with Bake Range and rendered as an animation (2048x1208 EXR, linear float)."""
    root = tmp_path_factory.mktemp("blender_render")
    scene = bpy.context.scene
    node = comp_over_plate(scene, demo_plate / f"plate.{FIRST}.exr", FIRST, LAST, model, cache_root, "DFL Range")
    assert bpy.ops.dfl.bake_range(node_name=node.name) == {"FINISHED"}
    set_render(scene, 2048, 1208, root / "render" / "f_####")
    bpy.ops.render.render(animation=True)
    return {"scene": scene, "node": node, "root": root, "bake": Path(node.node_tree.dfl.bake_pattern)}


def test_render_swaps_the_face_and_keeps_the_plate(baked: dict[str, Any], demo_plate: Path) -> None:
    for frame in range(FIRST, LAST + 1):
        delivered = str(baked["bake"]).replace("####", str(frame))
        render = pixels(baked["root"] / "render" / f"f_{frame}.exr")
        plate = pixels(demo_plate / f"plate.{frame}.exr")
        rows, cols = face_box(Path(delivered), (-64, -64), render.shape[:2])
        check_frame(render, plate, pixels(delivered), rows, cols)


def test_live_settings_need_no_rebake_and_network_settings_mark_stale(baked: dict[str, Any],
                                                                      demo_plate: Path) -> None:
    from dfl_blender import operators

    scene, node = baked["scene"], baked["node"]
    settings = node.node_tree.dfl
    assert not operators.is_stale(node, scene)
    node.inputs["Opacity"].default_value = 0.5
    assert not operators.is_stale(node, scene)  # live: the group redoes it
    scene.frame_current = 1002
    set_render(scene, 2048, 1208, baked["root"] / "half.exr")
    bpy.ops.render.render(write_still=True)
    node.inputs["Opacity"].default_value = 1.0
    half, full = pixels(baked["root"] / "half.exr"), pixels(baked["root"] / "render" / "f_1002.exr")
    plate = pixels(demo_plate / "plate.1002.exr")
    rows, cols = face_box(Path(str(baked["bake"]).replace("####", "1002")), (-64, -64), half.shape[:2])
    # Over with half the matte: plate + 0.5 * (full swap - plate), to float precision
    np.testing.assert_allclose(half[rows, cols, :3], 0.5 * (full[rows, cols, :3] + plate[rows, cols, :3]),
                               rtol=1e-4, atol=1e-4)
    settings.color_transfer = "none"
    assert operators.is_stale(node, scene)  # a setting of the network: the bake no longer matches
    settings.color_transfer = "rct"
    assert not operators.is_stale(node, scene)


def test_render_time_mode_bakes_missing_frames(addon: Any, demo_plate: Path, model: Path, cache_root: Path,
                                               tmp_path: Path) -> None:
    scene = bpy.context.scene
    node = comp_over_plate(scene, demo_plate / f"plate.{FIRST}.exr", FIRST, LAST, model, cache_root, "DFL Render")
    node.node_tree.dfl.render_bake = True
    scene.frame_start = 1002  # render 1002-1003 only: 1001 must stay unbaked
    scene.frame_current = 1  # the artist's current frame, outside the range (render_init still sees it)
    set_render(scene, 2048, 1208, tmp_path / "render" / "f_####")
    bpy.ops.render.render(animation=True)
    pattern = node.node_tree.dfl.bake_pattern
    assert pattern, "render-time mode did not bake"
    for frame in (1002, 1003):
        delivered = Path(pattern.replace("####", str(frame)))
        assert delivered.is_file() and (delivered.parent / "layers" / delivered.name).is_file()
        render = pixels(tmp_path / "render" / f"f_{frame}.exr")
        rows, cols = face_box(delivered, (-64, -64), render.shape[:2])
        check_frame(render, pixels(demo_plate / f"plate.{frame}.exr"), pixels(delivered), rows, cols)
    assert not Path(pattern.replace("####", "1001")).exists()


def test_cancel_leaves_only_whole_frames(addon: Any, demo_plate: Path, model: Path, cache_root: Path) -> None:
    """One frame in flight at a time; cancel once the first is done, while the second is in flight: the second
    finishes whole, the third never starts, nothing half-written is left."""
    from dfl_blender import operators
    from dfl_blender.bake import Bake, RangeJob

    scene = bpy.context.scene
    node = comp_over_plate(scene, demo_plate / f"plate.{FIRST}.exr", FIRST, LAST, model, cache_root, "DFL Cancel")
    bake = Bake(operators.request_for(node, scene))
    job = RangeJob(bake, jobs=1).start()
    while job.done < 1 and not job.finished.is_set():
        time.sleep(0.05)
    job.cancel()
    assert job.wait(300)
    assert job.cancelled and job.error is None
    folder = Path(bake.cache.folder)
    written = sorted(p.name for p in folder.glob("*.exr"))
    assert written == ["plate.1001.exr", "plate.1002.exr"] and job.report["status"] == "cancelled"
    leftovers = [p.name for p in folder.rglob("*") if p.is_file() and not re.fullmatch(
        r"plate\.\d{4}\.exr|swap_summary.*\.json", p.name)]
    assert leftovers == []
    # each written frame is whole: both files read completely (the plate's data window; the display window)
    shapes = engine_read_shapes([folder / name for name in written] + [folder / "layers" / n for n in written])
    assert shapes == [[1208, 2048, 4]] * len(written) + [[1080, 1920, 5]] * len(written)


ASYMMETRIC = """
import sys, OpenImageIO as oiio
src, dst = sys.argv[1], sys.argv[2]
buf = oiio.ImageBuf(src)
roi = oiio.ROI(-64, 1984, -20, 1124, 0, 1, 0, buf.nchannels)
oiio.ImageBufAlgo.crop(buf, roi).write(dst)  # keeps the display window 0,0 .. 1919,1079
"""


def test_overscan_with_an_asymmetric_negative_origin(addon: Any, demo_plate: Path, model: Path, cache_root: Path,
                                                     tmp_path: Path) -> None:
    """A plate whose data window (-64,-20)..(1983,1123) is not centred on its display window: Blender drops the
    windows and centres images, so the add-on moves the layers by the header's offset (12 px here). Baked with
    Bake Frame, through the session's engine, which keeps the model loaded."""
    from dfl_blender import bake, prefs

    from dfl_host.exr_header import read_header

    plate_file = tmp_path / "plate" / "plate.1001.exr"
    plate_file.parent.mkdir()
    run_engine(engine_python(), "-c", ASYMMETRIC, str(demo_plate / "plate.1001.exr"), str(plate_file))
    window = read_header(str(plate_file)).data_window
    assert (window.x_min, window.y_min, window.width, window.height) == (-64, -20, 2048, 1144)
    scene = bpy.context.scene
    node = comp_over_plate(scene, plate_file, 1001, 1001, model, cache_root, "DFL Overscan")
    assert bpy.ops.dfl.bake_frame(node_name=node.name) == {"FINISHED"}
    client = bake.engine_client(prefs.engine_path(), str(cache_root))
    assert [entry["model"] for entry in client.models()] == [str(model)]  # one engine, the model loaded once
    assert node.inputs["Image"].is_linked and node.node_tree.dfl.layer_offset_y == 12.0
    set_render(scene, 2048, 1144, tmp_path / "render.exr")
    bpy.ops.render.render(write_still=True)
    delivered = Path(node.node_tree.dfl.bake_pattern.replace("####", "1001"))
    render = pixels(tmp_path / "render.exr")
    rows, cols = face_box(delivered, (-64, -20), render.shape[:2])
    check_frame(render, pixels(plate_file), pixels(delivered), rows, cols)
