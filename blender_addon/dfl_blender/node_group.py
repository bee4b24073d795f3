"""The ``DFL Swap`` compositor node group: built-in nodes only, one group per node (each reads its own bake).

Inside: an Image node reading the baked layers (``matte`` and ``raw``, docs/dev/swap-output.md) and Blender's
nodes redoing the live settings over the group's Image input (the plate): erode/dilate of the matte, the limit
to the face's coverage, the Gaussian blur, opacity, the face's exposure and the straight Over. The live settings
are group inputs generated from the engine's schema; the erode and blur sizes in pixels depend on the face's size
in the plate, so :func:`sync` sets them (and where the layers sit over a plate with overscan) from what the bake
measured in the baked frames' headers.
"""

from __future__ import annotations

import os
from typing import Any

import bpy

from dfl_host.exr_header import ExrHeaderError, read_header

from . import bake_plan, shim

GROUP_NAME = "DFL Swap"
TAG = "dfl_swap_version"  # custom property on the group tree marking it as ours
GROUP_VERSION = 1
IMAGE_SOCKET = "Image"
# inner nodes the add-on sets later, by name
LAYERS, ERODE, CLIP, BLUR, PLACE, SPLIT, STRAIGHT, SHAPE, GATE, GATED, OPACITY, GRADE, FOREGROUND, OVER = (
    "DFL Layers", "DFL Erode", "DFL Clip", "DFL Blur", "DFL Place", "DFL Coverage", "DFL Straight", "DFL Limit",
    "DFL Gate", "DFL Gated", "DFL Opacity", "DFL Grade", "DFL Foreground", "DFL Over")


def live_specs() -> list[bake_plan.SettingSpec]:
    return [spec for spec in bake_plan.setting_specs(bake_plan.load_schema()) if spec.live]


def is_swap_node(node: Any) -> bool:
    tree = getattr(node, "node_tree", None)
    return node.bl_idname == "CompositorNodeGroup" and tree is not None and TAG in tree


def swap_nodes(scene: Any) -> list[Any]:
    tree = shim.scene_tree(scene, create=False)
    return [] if tree is None else [node for node in tree.nodes if is_swap_node(node)]


def _input(node: Any, name: str) -> Any:
    return node.inputs[name]


def build_group(api: str) -> Any:
    """A new ``DFL Swap`` group tree with its interface (Image in and out, the live settings) and inner graph."""
    tree = bpy.data.node_groups.new(GROUP_NAME, "CompositorNodeTree")
    tree[TAG] = GROUP_VERSION
    tree.interface.new_socket(name=IMAGE_SOCKET, in_out="INPUT", socket_type="NodeSocketColor")
    for spec in live_specs():
        socket = tree.interface.new_socket(name=spec.label, in_out="INPUT", socket_type="NodeSocketFloat")
        socket.description = spec.description
        socket.default_value = float(spec.default)
        if spec.minimum is not None:
            socket.min_value = float(spec.minimum)
        if spec.maximum is not None:
            socket.max_value = float(spec.maximum)
    tree.interface.new_socket(name=IMAGE_SOCKET, in_out="OUTPUT", socket_type="NodeSocketColor")
    nodes, links = tree.nodes, tree.links
    labels = {spec.name: spec.label for spec in live_specs()}

    def add(kind: str, name: str, x: float, y: float) -> Any:
        node = nodes.new(kind)
        node.name = node.label = name
        node.location = (x, y)
        return node

    group_in = add("NodeGroupInput", "DFL Input", -900, 0)
    group_out = add("NodeGroupOutput", "DFL Output", 900, 0)
    add("CompositorNodeImage", LAYERS, -900, 300)
    split = add("CompositorNodeSeparateColor", SPLIT, -650, 450)
    straight = add("CompositorNodePremulKey", STRAIGHT, -650, 600)
    shim.set_option(straight, api, "premul_mapping", "PREMUL_TO_STRAIGHT")
    grade = add("CompositorNodeExposure", GRADE, -400, 600)
    links.new(straight.outputs[0], grade.inputs["Image"])
    links.new(group_in.outputs[labels["face_exposure"]], grade.inputs["Exposure"])
    erode = add("CompositorNodeDilateErode", ERODE, -650, 250)
    clip = add("CompositorNodeDilateErode", CLIP, -400, 400)
    # the artist's erode: a disc over grey values, as the engine; the coverage limit: a square (Steps), 25x faster
    # and the same inset on the aligned face's upright edges
    shim.set_option(erode, api, "dilate_mode", "DISTANCE")
    shim.set_option(clip, api, "dilate_mode", "STEP")
    for node in (erode, clip):
        shim.set_option(node, api, "dilate_size", 0)
    links.new(split.outputs["Alpha"], clip.inputs[0])
    limit = add(shim.MATH_NODE[api], SHAPE, -400, 200)
    limit.operation = "MINIMUM"
    links.new(erode.outputs[0], limit.inputs[0])
    links.new(clip.outputs[0], limit.inputs[1])
    blur = add("CompositorNodeBlur", BLUR, -200, 200)
    shim.set_option(blur, api, "blur_filter", "GAUSS")
    shim.set_blur_size(blur, api, 0)
    links.new(limit.outputs[0], blur.inputs["Image"])
    gate = add(shim.MATH_NODE[api], GATE, 0, 300)
    gate.operation = "GREATER_THAN"
    gate.inputs[1].default_value = bake_plan.MIN_MATTE * (1 - 1e-6)
    links.new(blur.outputs[0], gate.inputs[0])
    gated = add(shim.MATH_NODE[api], GATED, 200, 250)
    gated.operation = "MULTIPLY"
    links.new(blur.outputs[0], gated.inputs[0])
    links.new(gate.outputs[0], gated.inputs[1])
    opacity = add(shim.MATH_NODE[api], OPACITY, 400, 250)
    opacity.operation = "MULTIPLY"
    links.new(gated.outputs[0], opacity.inputs[0])
    links.new(group_in.outputs[labels["opacity"]], opacity.inputs[1])
    foreground = add("CompositorNodeSetAlpha", FOREGROUND, 400, 500)
    shim.set_option(foreground, api, "set_alpha_mode", "REPLACE_ALPHA")
    links.new(grade.outputs[0], foreground.inputs["Image"])
    links.new(opacity.outputs[0], foreground.inputs["Alpha"])
    place = add("CompositorNodeTranslate", PLACE, 600, 500)
    links.new(foreground.outputs[0], place.inputs["Image"])
    over = add("CompositorNodeAlphaOver", OVER, 750, 0)
    shim.set_alpha_over_straight(over, api)
    background, front, _ = shim.alpha_over_inputs(over, api)
    links.new(group_in.outputs[IMAGE_SOCKET], background)
    links.new(place.outputs[0], front)
    links.new(over.outputs[0], group_out.inputs[IMAGE_SOCKET])
    return tree


def add_swap_node(scene: Any) -> Any:
    """A new DFL Swap node (with its own group tree) in the scene's compositor."""
    api = shim.api_of(scene)
    tree = shim.scene_tree(scene)
    node = tree.nodes.new("CompositorNodeGroup")
    node.node_tree = build_group(api)
    node.name = node.label = GROUP_NAME
    node.width = 220
    return node


def _link_layers(tree: Any) -> None:
    """Connect the layers Image node's ``matte`` and ``raw`` outputs (they exist once it reads a baked file)."""
    nodes, links = tree.nodes, tree.links
    layers = nodes[LAYERS]
    matte, raw = layers.outputs.get("matte"), layers.outputs.get("raw")
    if matte is None or raw is None:
        return
    for source, target in ((matte, nodes[ERODE].inputs[0]), (raw, nodes[SPLIT].inputs[0]),
                           (raw, nodes[STRAIGHT].inputs[0])):
        if not any(link.from_socket == source for link in target.links):
            links.new(source, target)


def point_at_bake(node: Any, layers_pattern: str, first: int, last: int, colourspace: str | None) -> None:
    """Make the group's layers Image node read the baked sequence ``layers_pattern`` (frames first..last, one file
    per scene frame of the same number), in the plate image's colourspace, and connect it."""
    tree = node.node_tree
    layers = tree.nodes[LAYERS]
    path = next((bake_plan.frame_file(layers_pattern, f) for f in range(first, last + 1)
                 if os.path.exists(bake_plan.frame_file(layers_pattern, f))), None)
    if path is None:
        return
    image = layers.image
    if image is None or bpy.path.abspath(image.filepath) != path:
        if image is not None and image.users <= 1:
            bpy.data.images.remove(image)
        image = bpy.data.images.load(path, check_existing=False)
        image.name = f"{node.name} layers"
        image.source = "SEQUENCE"
        layers.image = image
    else:
        image.reload()
    if colourspace:
        try:
            image.colorspace_settings.name = colourspace
        except TypeError:
            pass  # a multilayer file in a Blender that does not colour-manage its passes
    layers.frame_start = first
    layers.frame_duration = last - first + 1
    layers.frame_offset = first - 1
    _link_layers(tree)


def live_values(node: Any) -> dict[str, float]:
    """The node's live settings by schema name (its group inputs' values)."""
    values = {}
    for spec in live_specs():
        socket = node.inputs.get(spec.label)
        values[spec.name] = float(socket.default_value) if socket is not None else float(spec.default)
    return values


def measure_bake(layers_pattern: str, plate_pattern: str, frames: list[int]) -> tuple[float, float, float] | None:
    """(px_per_unit, x offset, y offset) of a bake: the median over its baked frames of the largest face's size,
    and where the layers sit over the plate (from both files' windows); None before any frame is baked."""
    units: list[float] = []
    offset = (0.0, 0.0)
    for frame in frames:
        try:
            header = read_header(bake_plan.frame_file(layers_pattern, frame))
        except (OSError, ExrHeaderError):
            continue
        unit = bake_plan.largest_face_px_per_unit(header.json_attribute("dfl_vfx:faces"))
        if unit is not None:
            units.append(unit)
        if len(units) <= 1:
            try:
                offset = bake_plan.layer_offset(read_header(bake_plan.frame_file(plate_pattern, frame)), header)
            except (OSError, ExrHeaderError):
                pass
    if not units:
        return None
    units.sort()
    return units[len(units) // 2], offset[0], offset[1]


def sync(node: Any, api: str) -> None:
    """Set the inner nodes from the node's live settings and its bake's face size and placement (stored by the
    bake): Blender copies the compositor before ``render_pre``, so this runs at bake time, on edits and in
    ``render_init``, never per frame. Values are written only when they change (a depsgraph handler calls it)."""
    settings, tree = node.node_tree.dfl, node.node_tree
    values = live_values(node)
    sizes = bake_plan.live_sizes(values["erode"], values["blur"], settings.px_per_unit or 1.0)
    for name, size in ((ERODE, -sizes.erode_px), (CLIP, -sizes.clip_px)):
        inner = tree.nodes[name]
        if shim.get_option(inner, api, "dilate_size") != size:
            shim.set_option(inner, api, "dilate_size", size)
        _set(inner, "mute", size == 0)
    shim.set_blur_size(tree.nodes[BLUR], api, sizes.blur_size_px)
    _set(tree.nodes[BLUR], "mute", sizes.blur_size_px <= 0)
    place = tree.nodes[PLACE]
    _set(place.inputs["X"], "default_value", settings.layer_offset_x)
    _set(place.inputs["Y"], "default_value", settings.layer_offset_y)


def _set(target: Any, attribute: str, value: Any) -> None:
    """Set only on change, so a depsgraph handler calling :func:`sync` does not wake itself again."""
    if getattr(target, attribute) != value:
        setattr(target, attribute, value)
