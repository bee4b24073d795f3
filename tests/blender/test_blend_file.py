"""What a farm node does with a saved shot (`blender -b shot.blend -a`): a fresh Blender process opens the .blend,
with the add-on enabled, and renders; the DFL Swap node's settings and bake travel in the file, render-time mode
bakes what is missing, and the frames equal the workstation's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from blender_comp import ADDON_ROOT, FIRST, comp_over_plate, pixels, set_render

FARM_NODE = """
import json, os, sys
sys.path[:0] = [{repo!r}, {addon_root!r}]
import bpy, addon_utils
addon_utils.enable("dfl_blender", default_set=True, handle_error=None)
bpy.context.preferences.addons["dfl_blender"].preferences.engine = {engine!r}
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
bpy.ops.render.render(animation=True)
node = bpy.context.scene.compositing_node_group.nodes["DFL Shot"] if hasattr(bpy.context.scene,
    "compositing_node_group") else bpy.context.scene.node_tree.nodes["DFL Shot"]
print(json.dumps({{"pattern": node.node_tree.dfl.bake_pattern, "render_bake": node.node_tree.dfl.render_bake}}))
sys.stdout.flush()
os._exit(0)
"""


def test_saved_shot_renders_in_a_fresh_blender(addon: Any, demo_plate: Path, model: Path, cache_root: Path,
                                               engine_exe: str, tmp_path: Path) -> None:
    scene = bpy.context.scene
    node = comp_over_plate(scene, demo_plate / f"plate.{FIRST}.exr", FIRST, FIRST + 1, model, cache_root,
                           "DFL Shot")
    node.node_tree.dfl.render_bake = True
    node.inputs["Blur"].default_value = 30.0
    scene.frame_end = FIRST + 1
    assert bpy.ops.dfl.bake_frame(node_name=node.name) == {"FINISHED"}  # 1001 baked here, 1002 on the farm
    set_render(scene, 2048, 1208, tmp_path / "farm" / "f_####")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.blend"), copy=True)
    set_render(scene, 2048, 1208, tmp_path / "here.exr")
    bpy.ops.render.render(write_still=True)
    script = FARM_NODE.format(repo=str(ADDON_ROOT.parent), addon_root=str(ADDON_ROOT), engine=engine_exe)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "shot.blend")], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"pattern": node.node_tree.dfl.bake_pattern, "render_bake": True}
    assert Path(found["pattern"].replace("####", str(FIRST + 1))).is_file()  # baked on the farm node
    farm, here = pixels(tmp_path / "farm" / f"f_{FIRST}.exr"), pixels(tmp_path / "here.exr")
    np.testing.assert_array_equal(farm, here)  # the same node, settings (blur 30) and bake: the same frame
    assert np.abs(pixels(tmp_path / "farm" / f"f_{FIRST + 1}.exr") - pixels(
        demo_plate / f"plate.{FIRST + 1}.exr")).max() > 0.1  # the farm's own bake swapped 1002
