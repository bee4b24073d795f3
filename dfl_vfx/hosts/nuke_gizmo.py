"""The Nuke gizmos `DFLSwap.gizmo` and `DFLMask.gizmo`, generated from the engine's settings schema.

Owns the gizmos' knobs (one per schema setting, named as the setting, with its label, help, range and choices) and
their inner graph: a Read of the bake's layers file (``matte`` and ``raw``, in ``layers/`` beside the baked frames, cut
to the faces' boxes; see docs/dev/swap-output.md) over the plate input, and Nuke's own
nodes redoing the live settings (erode, blur, opacity, face exposure) from ``matte`` and ``raw``. Erode and blur
sizes are in DeepFaceLab units scaled by the hidden ``px_per_unit`` knob, which the bake sets from the largest face
of the baked frame: exact for one face, approximate when faces of different sizes share a shot.

Pure text: :func:`gizmo_text` gives the same bytes for the same schema, and ``nuke/gizmos/`` holds the committed
result (a golden test regenerates it, so a knob cannot drift from the engine).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dfl_vfx.hosts.nk import Command, Knob, Node, braces, expression, quote, write

NUKE_VERSION_LINE = "version 14.0 v1"
GIZMO_DIR = Path(__file__).resolve().parents[2] / "nuke" / "gizmos"
BAKE_LAYERS = ("rgba", "matte", "raw")
# schema settings a host never shows: the bake fixes the layers and their window, the input Read gives the colourspace
HOST_OWNED = frozenset({"layers", "layer_window", "colorspace"})
# the inner Read's file: the layers file of the baked frame bake_file names (OUT/layers/NAME.####.exr)
LAYERS_FILE = "[file dirname [value parent.bake_file]]/layers/[file tail [value parent.bake_file]]"
TILE_COLOR = "0x4a6fa5ff"
STALE_TILE_COLOR = "0xb22222ff"

# addUserKnob type ids (../shared/spec/hosts-reference.md §1.2)
STRING, FILE, INT, ENUM, BOOL, DOUBLE, TAB, PYSCRIPT, TEXT = 1, 2, 3, 4, 6, 7, 20, 22, 26
SCHEMA_KNOB_TYPES = {"float": DOUBLE, "int": INT, "choice": ENUM, "text": STRING, "path": FILE, "list": STRING}
# the Enumeration item that means "the engine's default" for an optional choice (face_type)
ENGINE_DEFAULT_ITEM = "default"

# hidden knobs the bake writes and the inner graph reads
HIDDEN_KNOBS = ("bake_file", "bake_hash", "bake_first", "bake_last", "px_per_unit", "stale")
BUTTONS = {"bake_frame": "Bake frame", "bake_range": "Bake range", "cancel_bake": "Cancel",
           "show_farm_command": "Farm command"}
CALLBACK_MODULE = "dfl_nuke.swap_node"
# DFLSwap's Submit button: the node's swap (and the script's comp) as a farm job (docs/farm.md)
SUBMIT_KNOB = "submit_farm"
SUBMIT_SCRIPT = "import dfl_nuke.submit; dfl_nuke.submit.submit_farm()"


def _py(call: str) -> str:
    return f"import {CALLBACK_MODULE}; {CALLBACK_MODULE}.{call}"


def user_knob(type_id: int, name: str, label: str | None = None, tooltip: str | None = None,
              extra: Iterable[str] = ()) -> Knob:
    words = [str(type_id), name]
    if label is not None:
        words += ["l", quote(label)]
    if tooltip:
        words += ["t", quote(tooltip)]
    words += list(extra)
    return Knob("addUserKnob", "{" + " ".join(words) + "}")


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _tooltip(entry: Mapping[str, Any]) -> str:
    tip = str(entry.get("help", ""))
    if entry.get("units"):
        tip += f" ({entry['units']})"
    tip += ". Live: redone by Nuke nodes, no re-bake." if entry.get("live") else ". Needs a re-bake."
    return tip


def setting_knobs(entry: Mapping[str, Any]) -> list[Knob]:
    """The ``addUserKnob`` line and default value line of one schema setting."""
    name, kind, default = entry["name"], entry["type"], entry.get("default")
    extra: list[str] = []
    if kind == "choice":
        items = list(entry["choices"])
        if default is None:
            items.insert(0, ENGINE_DEFAULT_ITEM)
        extra.append("M " + braces(*items))
    elif kind in ("float", "int") and entry.get("range"):
        low, high = entry["range"]
        extra.append(f"R {_number(low)} {_number(high)}")
    knobs = [user_knob(SCHEMA_KNOB_TYPES[kind], name, entry["label"], _tooltip(entry), extra)]
    if isinstance(default, (list, tuple)):
        default = ",".join(str(item) for item in default)
    if default is not None and default != "" and not (kind == "choice" and default == entry["choices"][0]):
        knobs.append(Knob(name, quote(_number(default))))
    return knobs


def _divider(name: str, label: str) -> Knob:
    return user_knob(TEXT, name, "", None, ["T " + quote(label)])


def _hidden(type_id: int, name: str, value: str | None = None) -> list[Knob]:
    knobs = [user_knob(type_id, name, None, None, ["+INVISIBLE"])]
    if value is not None:
        knobs.append(Knob(name, value))
    return knobs


def swap_knobs(schema: Mapping[str, Any], mask_only: bool = False) -> list[Knob]:
    """The gizmo's own knobs: tabs, the inputs of a bake, the schema settings (re-bake then live), the frame
    range, the cache folder, the buttons and the hidden bake state."""
    title = "DFL Mask" if mask_only else "DFL Swap"
    settings = [entry for entry in schema["settings"] if entry["name"] not in HOST_OWNED]
    rebake = [entry for entry in settings if not entry.get("live") and entry.get("group") != "model"
              and entry["type"] != "path"]
    live = [entry for entry in settings if entry.get("live")]
    engine = [entry for entry in settings if not entry.get("live") and entry not in rebake]
    if mask_only:  # the matte alone: no face grade, no opacity of the face over the plate
        live = [entry for entry in live if entry["name"] in ("erode", "blur")]
    knobs = [
        Knob("inputs", "1"),
        Knob("help", quote(f"{title}: a DeepFaceLab face swap baked by the dfl-vfx engine. Bake, then tune the "
                           "live knobs without a re-bake. See docs/nuke.md.")),
        Knob("tile_color", TILE_COLOR),
        Knob("label", quote("[value stale_label]")),
        Knob("onCreate", quote(_py("on_create()"))),
        Knob("knobChanged", quote(_py("knob_changed()"))),
        user_knob(TAB, "dfl", title),
        user_knob(FILE, "model", "Model", "the trained model: a dfl-vfx model folder, .onnx or .dfm (needs a "
                                          "re-bake)"),
        user_knob(FILE, "faceset", "Face selection",
                  "a faceset of the faces to swap (from dfl-vfx extract, edited in the faceset tools); empty: every "
                  "face found on each frame (needs a re-bake)"),
        _divider("rebake_divider", "Re-bake settings (the network)"),
    ]
    for entry in rebake:
        knobs += setting_knobs(entry)
    knobs.append(_divider("live_divider", "Live settings (Nuke nodes, no re-bake)"))
    for entry in live:
        knobs += setting_knobs(entry)
    knobs += [
        _divider("bake_divider", "Bake"),
        user_knob(INT, "first_frame", "Frame range", "first frame to bake (default: the input's first frame)"),
        Knob("first_frame", expression("input.first_frame")),
        user_knob(INT, "last_frame", "", "last frame to bake", ["-STARTLINE"]),
        Knob("last_frame", expression("input.last_frame")),
        user_knob(FILE, "cache_root", "Cache folder",
                  "where bakes go: CACHE/<script>/<node>/<settings hash>/ (a new folder per re-bake setting)"),
    ]
    for index, (name, label) in enumerate(BUTTONS.items()):
        extra = ["T " + quote(_py(f"{name}()"))] + (["+STARTLINE"] if index == 0 else [])
        knobs.append(user_knob(PYSCRIPT, name, label, None, extra))
    if not mask_only:
        knobs.append(user_knob(PYSCRIPT, SUBMIT_KNOB, "Submit to farm",
                               "swap the frame range on the farm into this node's cache folder (docs/farm.md)",
                               ["T " + quote(SUBMIT_SCRIPT)]))
    knobs.append(user_knob(STRING, "stale_label", "Status", "what the bake shows: empty when current",
                           ["+DISABLED"]))
    knobs.append(user_knob(TAB, "engine_tab", "Engine"))
    knobs.append(user_knob(FILE, "engine", "Engine", "the dfl-vfx executable; empty: the one the install "
                                                     "recorded, then dfl-vfx on PATH"))
    for entry in engine:
        knobs += setting_knobs(entry)
    knobs += _hidden(FILE, "bake_file")
    knobs += _hidden(STRING, "bake_hash")
    knobs += _hidden(INT, "bake_first", "1")
    knobs += _hidden(INT, "bake_last", "1")
    knobs += _hidden(DOUBLE, "px_per_unit", "1")
    knobs += _hidden(BOOL, "stale")
    return knobs


def _node(cls: str, **knobs: str) -> Node:
    return Node(cls, [Knob(name, value) for name, value in knobs.items()])


# the engine's blur (dfl_vfx/merge/masks.py plate_blur_sigma): OpenCV's sigma of the odd kernel int(blur) made odd,
# 0 for blur <= 0; written without a ternary so that the same text is a Python expression the tests evaluate
BLUR_SIGMA = ("(parent.blur > 0) * (0.3 * ((int(parent.blur) + 1 - fmod(int(parent.blur), 2) - 1) / 2 - 1) + 0.8)"
              " * parent.px_per_unit")
# Nuke's Blur takes a filter size; a gaussian of size s has a sigma of about s / 2 (check in a real Nuke)
BLUR_SIZE_PER_SIGMA = 2


def matte_nodes(unpremult_face: bool) -> list[Node | Command]:
    """The engine's matte shaping (swap-output.md): ``min(erode(matte, erode_px), erode(raw.A, clip_px))`` then
    the blur. Erode is a Dilate with a negative size; the face is unpremultiplied first, as the coverage erode
    reuses ``raw.alpha``."""
    statements: list[Node | Command] = []
    if unpremult_face:
        statements.append(_node("Unpremult", channels="raw", alpha="raw.alpha", name="FaceUnpremult"))
    statements += [
        _node("Dilate", channels=braces("-raw.red", "-raw.green", "-raw.blue", "raw.alpha"),
              size=expression("-max(parent.blur, 0) / 2 * parent.px_per_unit"), name="CoverageErode"),
        _node("Dilate", channels="matte", size=expression("-parent.erode / 2 * parent.px_per_unit"),
              name="MatteErode"),
        Command(["set", "Nshaped", "[stack", "0]"]),
        Command(["push", "$Nshaped"]),
        _node("ChannelMerge", inputs="2", A="raw.alpha", operation="min", B="matte.alpha", output="matte.alpha",
              name="MatteLimit"),
        _node("Blur", channels="matte", size=expression(f"({BLUR_SIGMA}) * {BLUR_SIZE_PER_SIGMA}"),
              name="MatteBlur"),
    ]
    return statements


def inner_graph(mask_only: bool = False) -> list[Node | Command]:
    """The gizmo's children: plate input, the bake's Read, the live steps, the merge and the output."""
    read = _node("Read", inputs="0", file_type="exr", file=quote(LAYERS_FILE),
                 first=expression("parent.bake_first"), last=expression("parent.bake_last"),
                 origfirst=expression("parent.bake_first"), origlast=expression("parent.bake_last"),
                 on_error="black", raw="true", name="BakeRead")
    statements: list[Node | Command] = [
        _node("Input", inputs="0", name="plate"),
        Command(["set", "Nplate", "[stack", "0]"]),
        read,
    ]
    statements += matte_nodes(unpremult_face=not mask_only)
    to_mask = _node("Shuffle", **{"in": "matte", "out": "mask"}, name="MatteToMask")
    if mask_only:
        return statements + [
            to_mask,
            _node("Shuffle", **{"in": "matte", "red": "alpha", "green": "alpha", "blue": "alpha",
                                "alpha": "alpha"}, name="MatteToRgba"),
            _node("Output", name="Output1"),
        ]
    # Keymix takes B (the plate) as input 0 = the stack's top, A (the face) as 1, the mask stream as 2;
    # Copy takes B (the merge) as 0 and A (the baked stream, for mask.alpha) as 1
    return statements + [
        _node("Multiply", channels="matte", value=expression("parent.opacity"), name="MatteOpacity"),
        _node("Multiply", channels="raw", value=expression("pow(2, parent.face_exposure)"), name="FaceExposure"),
        to_mask,
        Command(["set", "Nbaked", "[stack", "0]"]),
        Command(["push", "$Nbaked"]),
        Command(["push", "$Nbaked"]),
        _node("Shuffle", **{"in": "raw", "red": "red", "green": "green", "blue": "blue", "alpha": "white"},
              name="FaceToRgba"),
        Command(["push", "$Nplate"]),
        _node("Keymix", inputs="3", channels="rgba", maskChannel="mask.alpha", name="FaceOverPlate"),
        _node("Copy", inputs="2", from0="mask.alpha", to0="mask.alpha", name="MaskToOutput"),
        _node("Output", name="Output1"),
    ]


LAYER_LINES = [
    Command(["add_layer", braces("matte", "matte.alpha")]),
    Command(["add_layer", braces("raw", "raw.red", "raw.green", "raw.blue", "raw.alpha")]),
    Command(["add_layer", braces("mask", "mask.alpha")]),
]


def gizmo_statements(schema: Mapping[str, Any], mask_only: bool = False) -> list[Node | Command]:
    gizmo = Node("Gizmo", swap_knobs(schema, mask_only), inner_graph(mask_only))
    return [Command(NUKE_VERSION_LINE.split()), *LAYER_LINES, gizmo]


def gizmo_text(schema: Mapping[str, Any], mask_only: bool = False) -> str:
    """The text of ``DFLSwap.gizmo`` (or ``DFLMask.gizmo`` with ``mask_only``) for this schema document."""
    header = "# generated by dfl_vfx.hosts.nuke_gizmo from `dfl-vfx schema`: do not edit, regenerate\n"
    return header + write(gizmo_statements(schema, mask_only))


GIZMOS = {"DFLSwap.gizmo": False, "DFLMask.gizmo": True}


def write_gizmos(folder: Path, schema: Mapping[str, Any]) -> list[Path]:
    """Write every gizmo into ``folder`` (temp then rename) and return their paths."""
    from dfl_vfx.io.atomic import atomic_path

    written = []
    for file_name, mask_only in GIZMOS.items():
        target = folder / file_name
        with atomic_path(target) as temp:
            Path(temp).write_text(gizmo_text(schema, mask_only), encoding="utf-8")
        written.append(target)
    return written


if __name__ == "__main__":  # python -m dfl_vfx.hosts.nuke_gizmo: regenerate nuke/gizmos/ from the schema
    from dfl_vfx.schema import schema_document

    for path in write_gizmos(GIZMO_DIR, schema_document()):
        print(path)
