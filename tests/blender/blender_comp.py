"""What the Blender tests share: the engine as a separate process, a compositor over a plate with a DFL Swap node,
render settings, and reading EXRs through bpy (no OpenImageIO in Blender's environment)."""


from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
ADDON_ROOT = REPO / "blender_addon"
for folder in (str(REPO), str(ADDON_ROOT)):
    if folder not in sys.path:
        sys.path.insert(0, folder)

import bpy  # noqa: E402

FIRST, LAST = 1001, 1003
MODEL = {"archi": "df-ud", "resolution": 64, "face_type": "wf", "ae_dims": 32, "e_dims": 16, "d_dims": 16,
         "d_mask_dims": 16}
MAKE_MODEL = f"""
import sys, torch
from pathlib import Path
from dfl_vfx.export.onnx_export import ExportMetadata, export_onnx
from dfl_vfx.models.config import ModelConfig
from dfl_vfx.models.saehd import SAEHD
torch.manual_seed(0)
model = SAEHD(ModelConfig.from_dict({MODEL!r})).eval()
export_onnx(model, Path(sys.argv[1]), ExportMetadata.for_model(model, iterations=0))
"""


def engine_python() -> str:
    return str(Path(engine_exe_path()).with_name("python"))


def engine_exe_path() -> str:
    exe = os.environ.get("DFL_VFX_EXE") or str(REPO / ".venv" / "bin" / "dfl-vfx")
    if not os.access(exe, os.X_OK):
        pytest.fail(f"the engine {exe} is missing: run `make test` (it builds .venv first) or set DFL_VFX_EXE")
    return exe


def run_engine(*args: str) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{args[:2]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout




def clear_compositor(scene: Any) -> Any:
    from dfl_blender import shim

    tree = shim.scene_tree(scene)
    for node in list(tree.nodes):
        tree.nodes.remove(node)
    return tree


def load_plate(first_file: Path, frames: int) -> Any:
    image = bpy.data.images.load(str(first_file), check_existing=False)
    image.source = "SEQUENCE"
    image.colorspace_settings.name = "Non-Color"  # the plate's values as they are: nothing converts them
    return image


def comp_over_plate(scene: Any, plate_first: Path, first: int, last: int, model: Path, cache: Path, name: str,
                    mask_mode: str = "hull") -> Any:
    """A compositor: plate Image node -> DFL Swap node ``name`` -> output; returns the DFL Swap node. Tests share
    one cache folder (so one engine process) and keep their bakes apart by node name."""
    from dfl_blender import shim

    tree = clear_compositor(scene)
    api = shim.api_of(scene)
    plate = tree.nodes.new("CompositorNodeImage")
    plate.image = load_plate(plate_first, last - first + 1)
    plate.frame_start, plate.frame_duration, plate.frame_offset = first, last - first + 1, first - 1
    tree.nodes.active = plate
    assert bpy.ops.dfl.add_swap_node() == {"FINISHED"}
    node = tree.nodes.active
    node.name = name
    assert node.inputs["Image"].is_linked and shim.output_input(tree, api).is_linked
    settings = node.node_tree.dfl
    settings.model, settings.cache_root, settings.mask_mode = str(model), str(cache), mask_mode
    scene.frame_start, scene.frame_end, scene.frame_current = first, last, first
    return node


def set_render(scene: Any, width: int, height: int, path: Path) -> None:
    render = scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
    render.image_settings.file_format = "OPEN_EXR"
    render.image_settings.color_depth = "32"
    render.image_settings.color_mode = "RGBA"
    scene.view_settings.view_transform = "Standard"
    scene.render.filepath = str(path)


def pixels(path: Path | str) -> np.ndarray:
    """An EXR's RGBA as Blender loads it (data window only, values untouched), top row first."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        image.colorspace_settings.name = "Non-Color"
        width, height = image.size
        data = np.empty(width * height * 4, np.float32)
        image.pixels.foreach_get(data)
    finally:
        bpy.data.images.remove(image)
    return data.reshape(height, width, 4)[::-1].copy()


def exr_faces(path: Path | str) -> list[dict]:
    from dfl_host.exr_header import read_header

    return read_header(str(path)).json_attribute("dfl_vfx:faces") or []


def engine_json(*args: str) -> Any:
    return json.loads(run_engine(*args))


READ_WHOLE = """
import sys, json, OpenImageIO as oiio
shapes = []
for path in sys.argv[1:]:
    image = oiio.ImageInput.open(path)
    pixels = image.read_image(0, 0, 0, image.spec().nchannels, "float")  # None for a file cut short
    shapes.append(None if pixels is None else list(pixels.shape))
    image.close()
print(json.dumps(shapes))
"""


def engine_read_shapes(paths: list[Path]) -> list[list[int] | None]:
    """Every pixel of each EXR read by the engine's OpenImageIO: (height, width, channels), None when it fails."""
    return json.loads(run_engine(engine_python(), "-c", READ_WHOLE, *map(str, paths)))
