"""The compositor API shim with the real bpy of this environment (5.0.1 in .venv-blender, 4.2.23 in
.venv-blender-lts: `make test` and `make test-blender-lts` run this file on each), plus its version decisions for
both APIs without bpy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
import numpy as np
import pytest
from blender_comp import clear_compositor, pixels, set_render
from dfl_blender import shim

EXPECTED_API = shim.API_5 if bpy.app.version >= (5, 0, 0) else shim.API_4


def test_version_decisions_for_both_apis() -> None:
    assert shim.option_target(shim.API_4, "dilate_mode", "DISTANCE") == ("prop", "mode", "DISTANCE")
    assert shim.option_target(shim.API_5, "dilate_mode", "DISTANCE") == ("input", "Type", "Distance")
    assert shim.option_target(shim.API_4, "dilate_size", -3) == ("prop", "distance", -3)
    assert shim.option_target(shim.API_5, "dilate_size", -3) == ("input", "Size", -3)
    assert shim.option_target(shim.API_5, "premul_mapping", "PREMUL_TO_STRAIGHT") == ("input", "Type", "To Straight")
    assert shim.api_of(type("Scene4", (), {"node_tree": None})()) == shim.API_4
    assert shim.api_of(type("Scene5", (), {"compositing_node_group": None})()) == shim.API_5


def test_this_blender_is_detected() -> None:
    assert shim.api_of(bpy.context.scene) == EXPECTED_API


def test_scene_tree_and_output(addon: Any) -> None:
    scene = bpy.context.scene
    tree = clear_compositor(scene)
    assert shim.scene_tree(scene) == tree
    output = shim.output_input(tree, EXPECTED_API)
    assert shim.output_input(tree, EXPECTED_API) == output  # found again, not made twice
    kind = "CompositorNodeComposite" if EXPECTED_API == shim.API_4 else "NodeGroupOutput"
    assert output.node.bl_idname == kind and [n.bl_idname for n in tree.nodes] == [kind]


@pytest.mark.parametrize(("kind", "option", "value"), [
    ("CompositorNodeDilateErode", "dilate_mode", "STEP"), ("CompositorNodeDilateErode", "dilate_mode", "DISTANCE"),
    ("CompositorNodeDilateErode", "dilate_size", -7), ("CompositorNodeBlur", "blur_filter", "GAUSS"),
    ("CompositorNodeSetAlpha", "set_alpha_mode", "REPLACE_ALPHA"),
    ("CompositorNodePremulKey", "premul_mapping", "PREMUL_TO_STRAIGHT")])
def test_options_round_trip(kind: str, option: str, value: Any) -> None:
    tree = clear_compositor(bpy.context.scene)
    node = tree.nodes.new(kind)
    shim.set_option(node, EXPECTED_API, option, value)
    assert shim.get_option(node, EXPECTED_API, option) == shim.option_target(EXPECTED_API, option, value)[2]


def test_straight_over_renders_as_specified(addon: Any, tmp_path: Path) -> None:
    """fg * a + bg * (1 - a) through the shim's Alpha Over, rendered: the over the DFL Swap group ends in."""
    scene = bpy.context.scene
    tree = clear_compositor(scene)
    background, foreground = tree.nodes.new("CompositorNodeRGB"), tree.nodes.new("CompositorNodeRGB")
    background.outputs[0].default_value = (0.2, 4.0, 0.05, 1.0)
    foreground.outputs[0].default_value = (3.0, 0.5, 0.25, 0.25)
    over = tree.nodes.new("CompositorNodeAlphaOver")
    shim.set_alpha_over_straight(over, EXPECTED_API)
    bg, fg, _ = shim.alpha_over_inputs(over, EXPECTED_API)
    tree.links.new(background.outputs[0], bg)
    tree.links.new(foreground.outputs[0], fg)
    tree.links.new(over.outputs[0], shim.output_input(tree, EXPECTED_API))
    set_render(scene, 16, 8, tmp_path / "over.exr")
    bpy.ops.render.render(write_still=True)
    got = pixels(tmp_path / "over.exr")
    expected = np.array([3.0 * 0.25 + 0.2 * 0.75, 0.5 * 0.25 + 4.0 * 0.75, 0.25 * 0.25 + 0.05 * 0.75, 1.0])
    np.testing.assert_allclose(got.reshape(-1, 4), np.broadcast_to(expected, (128, 4)), rtol=1e-6, atol=1e-6)
