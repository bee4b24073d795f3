"""What a DFL Swap node bakes and how its live part is sized, worked out without bpy.

Owns: the plate sequence of a Blender image path, frame files, where a baked frame's layers are
(:func:`layers_file`, the one place that knows the cache layout), the engine settings sent for a bake, the group
inputs and panel settings generated from the engine's schema, the live sizes in pixels (the formulas of
docs/dev/swap-output.md, "Redoing the live settings in a host") and where Blender must move the layers so they
sit over a plate with overscan. Errors a user can fix are :class:`BakeError`, one line.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dfl_host.exr_header import ExrHeader

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.json")
# the bake fixes the layers and their window; the engine reads the plate's colourspace from the file itself
HOST_OWNED = ("layers", "layer_window", "colorspace")
BAKE_LAYERS = ["rgba", "matte", "raw"]
LAYER_WINDOW = "display"  # Blender ignores data windows: the layers file covers the plate's display window
ENGINE_DEFAULT_ITEM = "default"  # the enum item standing for an optional setting's engine default
BLUR_SIZE_PER_SIGMA = 3.0  # Blender's Gaussian blur of size s has sigma s / 3 (measured on 4.2.23 and 5.0.1)
MIN_MATTE = 1.0 / 255.0  # matte values below this become 0 (docs/dev/swap-output.md, step 3)
SEQUENCE_NUMBER = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")


class BakeError(Exception):
    """A problem the artist can fix: reported by the operator in one line, never a traceback."""


@dataclass(frozen=True)
class SettingSpec:
    """One schema setting as a Blender property: kind is float, int, enum, text or path."""

    name: str
    label: str
    kind: str
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    items: tuple[str, ...] = ()
    live: bool = False


@functools.lru_cache(maxsize=4)
def load_schema(path: str = SCHEMA_FILE) -> dict[str, Any]:
    """The engine's schema document the add-on was built with (``dfl-vfx schema``); read once (handlers that run
    on every depsgraph update ask for it). Treat it as read-only."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def setting_specs(document: Mapping[str, Any]) -> list[SettingSpec]:
    """Every setting a DFL Swap node shows, in schema order: the live ones become group inputs, the others
    panel properties. ``layers`` and ``colorspace`` are the add-on's own business."""
    specs = []
    for entry in document["settings"]:
        name, kind, default = entry["name"], entry["type"], entry.get("default")
        if name in HOST_OWNED:
            continue
        description = str(entry.get("help", ""))
        if entry.get("units"):
            description += f" ({entry['units']})"
        description += ". Live: redone by compositor nodes" if entry.get("live") else ". Needs a re-bake"
        low, high = (entry.get("range") or (None, None))[:2]
        if kind == "choice":
            items = tuple(entry["choices"])
            if default is None:
                items = (ENGINE_DEFAULT_ITEM,) + items
                default = ENGINE_DEFAULT_ITEM
            specs.append(SettingSpec(name, entry["label"], "enum", default, description, items=items))
        elif kind in ("float", "int"):
            specs.append(SettingSpec(name, entry["label"], kind, default if default is not None else 0,
                                     description, low, high, live=bool(entry.get("live"))))
        else:
            specs.append(SettingSpec(name, entry["label"], "path" if kind == "path" else "text",
                                     "" if default is None else str(default), description))
    return specs


def engine_settings(specs: Iterable[SettingSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings sent to the engine: the engine's default item and empty text are left out, numbers stay
    numbers, text goes as written (no shell ever sees it); the bake's layers and their window are added."""
    settings: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in values:
            continue
        value = values[spec.name]
        if spec.kind in ("enum", "text", "path"):
            value = str(value).strip()
            if not value or value == ENGINE_DEFAULT_ITEM and spec.kind == "enum":
                continue
        elif spec.kind == "int":
            value = int(value)
        else:
            value = float(value)
        settings[spec.name] = value
    settings["layers"] = list(BAKE_LAYERS)
    settings["layer_window"] = LAYER_WINDOW
    return settings


def plate_pattern(path: str) -> str:
    """The engine's name of the EXR sequence a frame file belongs to: ``/p/plate.1001.exr`` -> ``/p/plate.####.exr``
    (the digits before the extension; as many ``#`` as digits)."""
    name = os.path.basename(path)
    if not name.lower().endswith(".exr"):
        raise BakeError(f"the plate {name or path!r} is not an EXR sequence; write the plate out as scene-linear "
                        "EXRs named like plate.1001.exr and load those")
    match = SEQUENCE_NUMBER.match(name)
    if match is None:
        raise BakeError(f"the plate {name} is not an image sequence (no frame number before .exr); name the "
                        "frames like plate.1001.exr")
    head, digits, ext = match.groups()
    return os.path.join(os.path.dirname(path), f"{head}{'#' * len(digits)}{ext}")


def frame_file(pattern: str, frame: int) -> str:
    """One frame's file of a ``####`` pattern (``shot.####.exr``, 1001 -> ``shot.1001.exr``)."""
    return re.sub(r"#+", lambda m: f"{frame:0{len(m.group(0))}d}", pattern, count=1)


def layers_file(delivered: str) -> str:
    """The file holding a baked frame's ``matte`` and ``raw`` layers, from its delivered frame: the companion
    ``OUT/layers/NAME.FRAME.exr`` (docs/dev/swap-output.md, ``dfl_vfx/swap/layout.py``)."""
    return os.path.join(os.path.dirname(delivered), "layers", os.path.basename(delivered))


def frame_list(frames: Iterable[int]) -> str:
    """``1001-1003,1005``: runs of frames as the engine's --frames reads them."""
    runs: list[list[int]] = []
    for frame in sorted(set(frames)):
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def largest_face_px_per_unit(faces: Any) -> float | None:
    """``px_per_unit`` of the largest face (by bbox area) of a ``dfl_vfx:faces`` header; None without faces."""
    best: tuple[float, float] | None = None
    for face in faces if isinstance(faces, list) else []:
        unit, box = face.get("px_per_unit"), face.get("bbox") or [0, 0, 0, 0]
        if unit is None:
            continue
        area = max(0.0, float(box[2]) - float(box[0])) * max(0.0, float(box[3]) - float(box[1]))
        if best is None or area > best[0]:
            best = (area, float(unit))
    return None if best is None else best[1]


@dataclass(frozen=True)
class LiveSizes:
    """The live erode and blur in plate pixels for Blender's nodes (erode > 0 shrinks, < 0 grows)."""

    erode_px: int
    clip_px: int
    blur_size_px: float


def live_sizes(erode: float, blur: float, px_per_unit: float) -> LiveSizes:
    """Blender's Dilate/Erode (Distance: the disc dx^2 + dy^2 <= r^2, integer r) and Gaussian Blur (size = 3 sigma)
    settings for the engine's ``erode_px``, ``clip_px`` and ``blur_sigma`` of one face (docs/dev/swap-output.md).
    Radii round to whole pixels: Blender's disc radius is an integer."""
    erode_px = erode / 2.0 * px_per_unit
    clip_px = max(blur, 0.0) / 2.0 * px_per_unit
    sigma = 0.0
    if blur > 0:
        taps = int(blur)
        taps = taps + 1 if taps % 2 == 0 else taps
        sigma = (0.3 * ((taps - 1) / 2.0 - 1.0) + 0.8) * px_per_unit
    return LiveSizes(_whole(erode_px), _whole(clip_px), BLUR_SIZE_PER_SIGMA * sigma)


def _whole(radius: float) -> int:
    """A radius rounded half away from zero; below one pixel nothing (the engine skips ``|r| < 1``)."""
    return int(math.copysign(math.floor(abs(radius) + 0.5), radius)) if abs(radius) >= 1 else 0


def layer_offset(plate: ExrHeader, layers: ExrHeader) -> tuple[float, float]:
    """How far (x right, y up, pixels) Blender must move the layers image so each of its pixels lands on the same
    pixel of the plate image. Blender drops both files' windows and centres every image on the canvas, so the move
    is the distance between the two data windows' centres (the plate's overscan, a negative origin included)."""
    (lx, ly), (px, py) = layers.data_window.centre, plate.data_window.centre
    return lx - px, -(ly - py)
