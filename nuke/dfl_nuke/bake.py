"""What a bake needs, worked out without Nuke: knob values to engine settings, the input plate, frame lists,
the engine path recorded at install, and the bake's outcome (px_per_unit of the largest face, from the engine's
``inspect`` or, without the engine, from the first cached frame's header)."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dfl_host.exr_header import ExrHeaderError, read_header
from dfl_host.schema import Schema

CONFIG_NAME = "dfl_nuke_config.json"
ENGINE_DEFAULT_ITEM = "default"  # the Enumeration item that stands for the engine's default (nuke_gizmo.py)
HOST_OWNED = ("layers", "layer_window", "colorspace")
BAKE_LAYERS = ["rgba", "matte", "raw"]
BAKE_LAYER_WINDOW = "face"  # Nuke's Read honours data windows: the layers file holds only the faces' boxes
EXR_SUFFIXES = (".exr",)
LAYERS_FOLDER = "layers"  # a baked frame's layers file: OUT/layers/NAME.FRAME.exr (dfl_vfx/swap/layout.py)
FACES_ATTRIBUTE = "dfl_vfx:faces"


class BakeError(Exception):
    """A problem the compositor can fix: shown with ``nuke.message``, one line, never a traceback."""


def plugin_root() -> str:
    """The plugin folder (the one holding ``dfl_nuke``)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def configured_engine(root: str | None = None) -> str | None:
    """The engine path ``dfl-vfx host install nuke`` recorded in the plugin folder's config, if any."""
    path = os.path.join(root or plugin_root(), CONFIG_NAME)
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle).get("engine")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


def engine_path(knob_value: str, root: str | None = None) -> str | None:
    """The node's Engine knob, else the installed engine, else None (dfl_host then looks at $DFL_VFX_EXE, PATH)."""
    return knob_value.strip() or configured_engine(root)


def knob_settings(schema: Schema, values: Mapping[str, Any]) -> dict[str, Any]:
    """Engine settings from knob values by setting name: the engine's default item and empty text become None
    (the engine's default), numbers stay numbers, text is passed as it is (no shell ever sees it)."""
    settings: dict[str, Any] = {}
    for name in schema.names:
        if name in HOST_OWNED or name not in values:
            continue
        value = values[name]
        kind = schema.entry(name).get("type")
        if isinstance(value, str):
            value = value.strip()
            if value == "" or (kind == "choice" and value == ENGINE_DEFAULT_ITEM):
                continue
        if kind == "int" and value is not None:
            value = int(value)
        elif kind == "float" and value is not None:
            value = float(value)
        settings[name] = value
    settings["layers"] = list(BAKE_LAYERS)
    settings["layer_window"] = BAKE_LAYER_WINDOW
    return settings


# Nuke's names for the scene-linear space (nuke-default config, the role): the engine's default, scene linear
SCENE_LINEAR_NAMES = frozenset({"linear", "scene_linear", "scene linear", "default", ""})


def engine_colourspace(read_colourspace: str) -> str | None:
    """A Read's colorspace knob as the engine's ``colorspace`` setting: ``default (X)`` is X; Nuke's linear
    (or the scene_linear role) is None, the engine's scene-linear default; any other name goes as it is (an OCIO
    name the engine's config lacks comes back as a one-line error)."""
    name = read_colourspace.strip()
    if name.startswith("default (") and name.endswith(")"):
        name = name[len("default ("):-1].strip()
    return None if name.lower() in SCENE_LINEAR_NAMES else name


def plate_pattern(path: str) -> str:
    """A Read's file as the engine names a sequence: ``%04d`` -> ``####``."""
    return re.sub(r"%0?(\d*)d", lambda m: "#" * max(1, int(m.group(1) or 1)), path)


def frame_file(pattern: str, frame: int) -> str:
    """One frame's file of a ``####`` pattern (``shot.####.exr``, 1001 -> ``shot.1001.exr``)."""
    return re.sub(r"#+", lambda m: f"{frame:0{len(m.group(0))}d}", pattern, count=1)


def check_exr(path: str, node: str, source: str) -> str:
    """The plate pattern of an EXR Read; a BakeError naming the node for anything else."""
    if not path:
        raise BakeError(f"{node}: the input {source} has no file; point it at an EXR sequence")
    if not path.lower().endswith(EXR_SUFFIXES):
        raise BakeError(f"{node}: the input {source} reads {os.path.basename(path)}, not an EXR sequence; write "
                        "the plate out as scene-linear EXRs (name.####.exr) and read those")
    return plate_pattern(path)


def check_model(model: str, node: str) -> str:
    if not model.strip():
        raise BakeError(f"{node}: no model; set Model to a trained dfl-vfx model folder, .onnx or .dfm")
    if not os.path.exists(model):
        raise BakeError(f"{node}: model {model} does not exist; set Model to a trained model")
    return model


def present_frames(pattern: str, frames: Iterable[int]) -> tuple[list[int], list[int]]:
    """(frames on disk, missing frames) of a sequence."""
    present: list[int] = []
    missing: list[int] = []
    for frame in frames:
        (present if os.path.exists(frame_file(pattern, frame)) else missing).append(frame)
    return present, missing


def frame_list(frames: Iterable[int]) -> str:
    """``1001-1003,1005``: runs of frames as the engine's --frames reads them."""
    runs: list[list[int]] = []
    for frame in sorted(set(frames)):
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def largest_face_px_per_unit(inspected: Mapping[str, Any]) -> float | None:
    """The ``px_per_unit`` of the largest face (by bbox area) in a baked frame's header (the ``inspect`` answer),
    which the gizmo's erode and blur use for the whole frame."""
    attributes = inspected.get("attributes") or {}
    faces = attributes.get("faces") or attributes.get(FACES_ATTRIBUTE) or []
    if isinstance(faces, str):
        faces = json.loads(faces)
    return largest_px_per_unit(faces)


def largest_px_per_unit(faces: Iterable[Mapping[str, Any]]) -> float | None:
    """The ``px_per_unit`` of the largest face (by bbox area) of a ``dfl_vfx:faces`` list; None without faces."""
    best: tuple[float, float] | None = None
    for face in faces:
        unit = face.get("px_per_unit")
        box = face.get("bbox") or [0, 0, 0, 0]
        if unit is None:
            continue
        area = max(0.0, float(box[2]) - float(box[0])) * max(0.0, float(box[3]) - float(box[1]))
        if best is None or area > best[0]:
            best = (area, float(unit))
    return None if best is None else best[1]


def cached_frame_files(pattern: str, first: int, last: int) -> list[str]:
    """The files of a bake folder that hold a frame of ``first``-``last``, first frame first: for each frame its
    delivered frame, then its layers file, whichever are there (one listing per folder, never a stat per frame)."""
    folder, name = os.path.split(pattern)
    match = re.fullmatch(r"(.*?)#+(.*)", name)
    if match is None:
        return []
    frame_name = re.compile(re.escape(match.group(1)) + r"(\d+)" + re.escape(match.group(2)))
    found: list[tuple[int, int, str]] = []
    for order, where in enumerate((folder, os.path.join(folder, LAYERS_FOLDER))):
        try:
            names = os.listdir(where or ".")
        except OSError:
            continue
        for entry in names:
            hit = frame_name.fullmatch(entry)
            if hit is not None and first <= int(hit.group(1)) <= last:
                found.append((int(hit.group(1)), order, os.path.join(where, entry)))
    return [path for _, _, path in sorted(found)]


def cached_px_per_unit(pattern: str, first: int, last: int) -> float | None:
    """The ``px_per_unit`` of the largest face of the first cached frame of ``first``-``last`` (the bake folder's
    ``pattern``), read from its header with the standard library, without the engine: the value a bake in Nuke sets.
    The delivered frame and its layers file hold the same ``dfl_vfx:faces``; the first readable one counts (a file
    cut short, still being written by the farm, is passed over). None when no frame is cached, no header can be read
    or the frame has no face."""
    for path in cached_frame_files(pattern, first, last):
        try:
            faces = read_header(path).json_attribute(FACES_ATTRIBUTE)
        except (OSError, ExrHeaderError):
            continue
        if faces is None:
            continue
        try:
            unit = largest_px_per_unit(faces)
        except (AttributeError, LookupError, TypeError, ValueError):  # a header another writer got wrong
            return None
        return unit if unit is not None and math.isfinite(unit) and unit > 0 else None
    return None
