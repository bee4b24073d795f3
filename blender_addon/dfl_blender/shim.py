"""The compositor API of Blender 4.2-4.5 against 5.0, in one place (hosts-reference.md §2.3).

4.x keeps the scene's tree in ``scene.node_tree`` (``use_nodes``) and ends it in a Composite node; 5.0 makes the
tree its own data-block (``scene.compositing_node_group``) ending in a Group Output. 5.0 also turned node options
into input sockets (Dilate/Erode size and type, Blur size and type, Set Alpha and Premul Key type) and compositor
math into the shared ``ShaderNodeMath``. Everything else in the add-on goes through the functions here, so a
version difference is fixed in one place. The decisions themselves (:func:`api_of`, :data:`OPTIONS`) need no bpy.
"""

from __future__ import annotations

from typing import Any

API_4 = "4.x"
API_5 = "5.0"
TREE_NAME = "Compositing"

# option name -> (4.x node property, 5.0 input socket, 4.x value -> 5.0 value)
OPTIONS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "dilate_mode": ("mode", "Type", {"STEP": "Steps", "THRESHOLD": "Threshold", "DISTANCE": "Distance",
                                     "FEATHER": "Feather"}),
    "dilate_size": ("distance", "Size", {}),
    "blur_filter": ("filter_type", "Type", {"GAUSS": "Gaussian", "FLAT": "Box"}),
    "set_alpha_mode": ("mode", "Type", {"APPLY": "Apply Mask", "REPLACE_ALPHA": "Replace Alpha"}),
    "premul_mapping": ("mapping", "Type", {"STRAIGHT_TO_PREMUL": "To Premultiplied",
                                           "PREMUL_TO_STRAIGHT": "To Straight"}),
}
MATH_NODE = {API_4: "CompositorNodeMath", API_5: "ShaderNodeMath"}
VALUE_NODE = {API_4: "CompositorNodeValue", API_5: "ShaderNodeValue"}
# AlphaOver inputs by role: (background, foreground, factor)
ALPHA_OVER_INPUTS = {API_4: (1, 2, 0), API_5: ("Background", "Foreground", "Factor")}


def api_of(scene: Any) -> str:
    """Which compositor API a scene has: 5.0 when it has ``compositing_node_group``."""
    return API_5 if hasattr(scene, "compositing_node_group") else API_4


def option_target(api: str, option: str, value: Any) -> tuple[str, str, Any]:
    """Where an option lives and in which words: ("prop" | "input", name, value for that version)."""
    prop, socket, words = OPTIONS[option]
    if api == API_4:
        return "prop", prop, value
    return "input", socket, words.get(value, value) if isinstance(value, str) else value


def set_option(node: Any, api: str, option: str, value: Any) -> None:
    """Set a node option on either version (a property in 4.x, an input socket's value in 5.0)."""
    kind, name, converted = option_target(api, option, value)
    if kind == "prop":
        setattr(node, name, converted)
    else:
        node.inputs[name].default_value = converted


def get_option(node: Any, api: str, option: str) -> Any:
    kind, name, _ = option_target(api, option, None)
    return getattr(node, name) if kind == "prop" else node.inputs[name].default_value


def scene_tree(scene: Any, create: bool = True) -> Any:
    """The scene's compositing tree (made when missing and ``create``); None when there is none."""
    import bpy

    if api_of(scene) == API_5:
        tree = scene.compositing_node_group
        if tree is None and create:
            tree = bpy.data.node_groups.new(TREE_NAME, "CompositorNodeTree")
            scene.compositing_node_group = tree
        return tree
    if create and not scene.use_nodes:
        scene.use_nodes = True
    return scene.node_tree


def output_input(tree: Any, api: str) -> Any:
    """The socket the compositor's result goes into: the Composite node's Image (4.x), the Group Output's Image
    (5.0); the node is made when missing."""
    if api == API_4:
        node = next((n for n in tree.nodes if n.bl_idname == "CompositorNodeComposite"), None)
        if node is None:
            node = tree.nodes.new("CompositorNodeComposite")
        return node.inputs["Image"]
    if not any(item.item_type == "SOCKET" and item.in_out == "OUTPUT" and item.name == "Image"
               for item in tree.interface.items_tree):
        tree.interface.new_socket(name="Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    node = next((n for n in tree.nodes if n.bl_idname == "NodeGroupOutput"), None)
    if node is None:
        node = tree.nodes.new("NodeGroupOutput")
    return node.inputs["Image"]


def new_math(tree: Any, api: str, operation: str, value: float | None = None) -> Any:
    """A math node doing ``operation``; ``value`` fills its second input."""
    node = tree.nodes.new(MATH_NODE[api])
    node.operation = operation
    if value is not None:
        node.inputs[1].default_value = value
    return node


def new_value(tree: Any, api: str, value: float) -> Any:
    node = tree.nodes.new(VALUE_NODE[api])
    node.outputs[0].default_value = value
    return node


def alpha_over_inputs(node: Any, api: str) -> tuple[Any, Any, Any]:
    """(background, foreground, factor) inputs of an Alpha Over node."""
    return tuple(node.inputs[key] for key in ALPHA_OVER_INPUTS[api])  # type: ignore[return-value]


def set_alpha_over_straight(node: Any, api: str) -> None:
    """Over with a straight (unpremultiplied) foreground: ``fg * a + bg * (1 - a)``."""
    if api == API_4:
        node.use_premultiply = True
    else:
        node.inputs["Straight Alpha"].default_value = True


def set_blur_size(node: Any, api: str, size_px: float) -> None:
    """A blur's radius in pixels, both axes."""
    if api == API_4:
        size = max(0, int(round(size_px)))
        if (node.size_x, node.size_y) != (size, size):
            node.size_x = node.size_y = size
    elif tuple(node.inputs["Size"].default_value) != (size_px, size_px):
        node.inputs["Size"].default_value = (size_px, size_px)
