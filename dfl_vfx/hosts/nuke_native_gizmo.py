"""Nuke's native path: the ``DFLSwapNative`` gizmo and the per-frame alignment it is baked with.

At comp time the gizmo needs no engine: a ``CornerPin2D`` maps the face's four plate corners (animated, one key per
frame) onto an R x R square, a ``Crop`` makes that square the format, Nuke's own ``Inference`` node runs the ``.cat``
made by CatFileCreator from ``dfl-vfx export --torchscript`` (face RGB and the mask in alpha), a second
``CornerPin2D`` with ``invert`` puts the result back, and a ``Merge2`` (over, premultiplied by the mask) lays it on
the plate. CornerPin2D was chosen over Transform (whose translate/rotate/scale/center decomposition of an affine
matrix is easy to get subtly wrong) and over a raw matrix knob (whose .nk syntax we cannot check): its ``from1``..
``from4`` / ``to1``..``to4`` knobs are plain points, and four corners of an affine map give that map exactly.

:func:`alignment` is what ``dfl-vfx host matrices`` prints: per frame the engine's plate -> aligned matrix
(:func:`dfl_vfx.face.align.get_transform_mat` of the faceset's smoothed track, the crop the engine swaps) and the
four pins in Nuke's coordinates: x right and y **up** from the display window's bottom-left corner, pixel centres at
half-integers (OpenCV's are at integers, y down). ``nuke/dfl_nuke/native.py`` writes the pins as animation curves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.hosts.nk import Command, Knob, Node, expression, quote, write
from dfl_vfx.hosts.nuke_gizmo import BOOL, DOUBLE, FILE, INT, PYSCRIPT, STRING, TAB, TEXT, user_knob

GIZMO_FILE = "DFLSwapNative.gizmo"
GIZMO_DIR = Path(__file__).resolve().parents[2] / "nuke" / "gizmos"
NUKE_VERSION_LINE = "version 14.0 v1"
CALLBACK_MODULE = "dfl_nuke.native"
PIN_KNOBS = tuple(f"pin{i}_{axis}" for i in range(1, 5) for axis in "xy")
FORMAT = "dfl_vfx.nuke_alignment"


@dataclass(frozen=True)
class Display:
    """A plate's display window (absolute pixels): Nuke's format."""

    x: int
    y: int
    width: int
    height: int


def nuke_from_cv(display: Display) -> np.ndarray:
    """3x3: absolute OpenCV plate pixels (centres at integers, y down) -> Nuke's (centres at +0.5, y up)."""
    return np.array([[1.0, 0.0, 0.5 - display.x], [0.0, -1.0, display.y + display.height - 0.5], [0, 0, 1]])


def crop_nuke_from_cv(size: int) -> np.ndarray:
    """3x3: OpenCV pixels of the size x size aligned crop -> Nuke's pixels of that crop."""
    return nuke_from_cv(Display(0, 0, size, size))


def crop_corners(size: int) -> np.ndarray:
    """The crop's corners in Nuke's coordinates, in CornerPin order (bottom-left, bottom-right, top-right,
    top-left): the ``to1``..``to4`` of the align pin."""
    return np.array([(0.0, 0.0), (size, 0.0), (size, size), (0.0, size)])


def nuke_pins(matrix: np.ndarray, size: int, display: Display) -> np.ndarray:
    """(4, 2): where the crop's corners :func:`crop_corners` lie on the plate, in Nuke's coordinates (the
    ``from1``..``from4`` of the align pin), for an engine plate -> aligned ``matrix`` (2x3, OpenCV pixels)."""
    affine = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    nuke_affine = crop_nuke_from_cv(size) @ affine @ np.linalg.inv(nuke_from_cv(display))
    corners = np.hstack([crop_corners(size), np.ones((4, 1))])
    return (np.linalg.inv(nuke_affine) @ corners.T).T[:, :2]


def _area(rect: list[float]) -> float:
    return max(0.0, rect[2] - rect[0]) * max(0.0, rect[3] - rect[1])


def alignment(faceset: str | Path, resolution: int, face_type: str, display: Display,
              frames: Iterable[int] | None = None, track: int | None = None) -> dict[str, Any]:
    """Per frame of ``frames`` (default: every frame the faceset tracked) the face to swap (track ``track``, else
    the largest face) as the engine's matrix and the four Nuke pins; frames without that face are listed as
    missing."""
    from dfl_vfx.face.align import get_transform_mat
    from dfl_vfx.face.face_type import FaceType
    from dfl_vfx.faceset.alignments import read_alignments

    tracks = read_alignments(faceset).tracks
    kind = FaceType.parse(face_type)
    wanted = sorted(tracks) if frames is None else sorted(set(frames))
    out: list[dict[str, Any]] = []
    missing: list[int] = []
    for frame in wanted:
        faces = [face for face in tracks.get(frame, []) if track is None or face.track_id == track]
        if not faces:
            missing.append(frame)
            continue
        face = max(faces, key=lambda f: _area(f.rect))
        matrix = get_transform_mat(face.landmarks_array(), resolution, kind)
        out.append({"frame": frame, "track": face.track_id, "matrix": matrix.tolist(),
                    "pins": nuke_pins(matrix, resolution, display).tolist()})
    if not out:
        which = "" if track is None else f" of track {track}"
        raise DflError(f"{faceset}: no face{which} in the frames asked for; check --frames and --track (the "
                       "faceset's tracks are in its alignments.json)")
    return {"format": FORMAT, "resolution": resolution, "face_type": kind.cli_name,
            "display": [display.x, display.y, display.width, display.height], "frames": out, "missing": missing}


def model_face(model: str | Path) -> tuple[int, str]:
    """(resolution, face type) of an exported model: a ``.pt`` from ``export --torchscript`` or an ``.onnx``."""
    path = Path(model)
    if not path.is_file():
        raise DflError(f"--model {path}: no such file; give the .pt (export --torchscript) or the .onnx")
    if path.suffix.lower() == ".pt":
        from dfl_vfx.export.torchscript_export import read_info

        info = read_info(path)
        return int(info["resolution"]), str(info["face_type"])
    if path.suffix.lower() in (".onnx", ".dfm"):
        from dfl_vfx.export.onnx_export import read_metadata

        meta = read_metadata(path)
        if "resolution" not in meta or "face_type" not in meta:
            raise DflError(f"--model {path}: its metadata lacks resolution or face_type; re-export it with dfl-vfx")
        return int(meta["resolution"]), str(meta["face_type"])
    raise DflError(f"--model {path}: give the .pt (export --torchscript) or the .onnx the .cat was made from")


def plate_display(plate: str) -> Display:
    """The display window of a plate sequence's first existing frame."""
    from dfl_vfx.io.image import read_header
    from dfl_vfx.io.sequence import open_sequence

    sequence = open_sequence(plate)
    present = [path for path in sequence.paths() if path.is_file()]
    if not present:
        raise DflError(f"--plate {plate}: no frame on disk")
    window = read_header(present[0]).display_window
    return Display(window.x, window.y, window.width, window.height)


# ---------------------------------------------------------------------------------------------------------------
# The gizmo


def _py(call: str) -> str:
    return f"import {CALLBACK_MODULE}; {CALLBACK_MODULE}.{call}"


def _node(cls: str, *knobs: tuple[str, str]) -> Node:
    return Node(cls, [Knob(name, value) for name, value in knobs])


def gizmo_knobs() -> list[Knob]:
    knobs = [
        Knob("inputs", "1"),
        Knob("help", quote("DFL Swap (native): the face swap inside Nuke, no engine at comp time. Bake alignment "
                           "writes the face's per-frame corner pins from a faceset; Nuke's Inference node runs the "
                           ".cat made by CatFileCreator from `dfl-vfx export --torchscript`. See docs/nuke.md.")),
        Knob("tile_color", "0x4a8fa5ff"),
        user_knob(TAB, "dfl", "DFL Swap (native)"),
        user_knob(FILE, "cat_file", "Cat file",
                  "the .cat CatFileCreator made from `dfl-vfx export --torchscript` (channels in rgba.red, "
                  "rgba.green, rgba.blue; out rgba.red, rgba.green, rgba.blue, rgba.alpha)"),
        user_knob(BOOL, "use_gpu", "Use GPU if available", "run the Inference node on the GPU"),
        Knob("use_gpu", "true"),
        user_knob(FILE, "model", "Model (.pt)",
                  "the .pt the .cat was made from: its resolution and face type shape the alignment"),
        user_knob(FILE, "faceset", "Faceset",
                  "the plate's faceset (dfl-vfx extract, or the DFL Extract panel): its tracked faces give the "
                  "per-frame alignment"),
        user_knob(INT, "track", "Track", "the face track to swap; -1: the largest face of each frame"),
        Knob("track", "-1"),
        user_knob(INT, "first_frame", "Frame range", "first frame to align"),
        Knob("first_frame", expression("input.first_frame")),
        user_knob(INT, "last_frame", "", "last frame to align", ["-STARTLINE"]),
        Knob("last_frame", expression("input.last_frame")),
        user_knob(PYSCRIPT, "bake_alignment", "Bake alignment", None,
                  ["T " + quote(_py("bake_alignment()")), "+STARTLINE"]),
        user_knob(TEXT, "live_divider", "", None, ["T " + quote("Matte (live)")]),
        user_knob(DOUBLE, "erode", "Erode", "shrink (>0) or grow (<0) the mask, in pixels of the aligned face",
                  ["R -20 20"]),
        user_knob(DOUBLE, "blur", "Blur", "soften the mask's edge, in pixels of the aligned face", ["R 0 50"]),
        Knob("blur", "2"),
        user_knob(DOUBLE, "opacity", "Opacity", "how much of the face is laid over the plate", ["R 0 1"]),
        Knob("opacity", "1"),
        user_knob(STRING, "status", "Status", "what the last bake of the alignment did", ["+DISABLED"]),
        user_knob(TAB, "engine_tab", "Engine"),
        user_knob(FILE, "engine", "Engine", "the dfl-vfx executable Bake alignment runs; empty: the one the "
                                            "install recorded, then dfl-vfx on PATH"),
        user_knob(INT, "resolution", "Resolution", "the model's face size (set by Bake alignment)", ["+DISABLED"]),
        Knob("resolution", "256"),
        user_knob(DOUBLE, "face_present", "Face present", "1 on frames with a face, 0 elsewhere (baked)",
                  ["+INVISIBLE"]),
    ]
    for name in PIN_KNOBS:
        knobs.append(user_knob(DOUBLE, name, None, None, ["+INVISIBLE"]))
    return knobs


def _pin(i: int) -> str:
    return "{" + f"{{parent.pin{i}_x}} {{parent.pin{i}_y}}" + "}"


TO_PINS = ("{0 0}", "{{parent.resolution} 0}", "{{parent.resolution} {parent.resolution}}", "{0 {parent.resolution}}")


def _corner_pin(name: str, invert: bool) -> Node:
    knobs = [(f"to{i}", TO_PINS[i - 1]) for i in range(1, 5)]
    knobs += [(f"from{i}", _pin(i)) for i in range(1, 5)]
    knobs += [("invert", "true" if invert else "false"), ("filter", "Cubic"), ("black_outside", "true"),
              ("name", name)]
    return _node("CornerPin2D", *knobs)


def inner_graph() -> list[Node | Command]:
    """plate -> AlignPin (face corners -> R x R square) -> AlignedFace (Crop to it) -> FaceInference (.cat) ->
    MaskErode, MaskBlur (alpha) -> PasteBack (the inverse pin) -> FacePremult -> FaceOverPlate (Merge2 over, B =
    plate) -> MaskToOutput (Copy the mask into mask.alpha) -> Output1."""
    return [
        _node("Input", ("inputs", "0"), ("name", "plate")),
        Command(["set", "Nplate", "[stack", "0]"]),
        _corner_pin("AlignPin", invert=False),
        _node("Crop", ("box", "{0 0 {parent.resolution} {parent.resolution}}"), ("reformat", "true"),
              ("crop", "true"), ("name", "AlignedFace")),
        _node("Inference", ("modelFile", quote("[value parent.cat_file]")),
              ("useGPUIfAvailable", expression("parent.use_gpu")), ("name", "FaceInference")),
        _node("Dilate", ("channels", "alpha"), ("size", expression("-parent.erode")), ("name", "MaskErode")),
        _node("Blur", ("channels", "alpha"), ("size", expression("parent.blur")), ("name", "MaskBlur")),
        _corner_pin("PasteBack", invert=True),
        _node("Multiply", ("channels", "alpha"), ("value", expression("parent.opacity * parent.face_present")),
              ("name", "MaskOpacity")),
        _node("Premult", ("name", "FacePremult")),
        Command(["set", "Nface", "[stack", "0]"]),
        Command(["push", "$Nface"]),
        Command(["push", "$Nplate"]),
        _node("Merge2", ("inputs", "2"), ("operation", "over"), ("name", "FaceOverPlate")),
        _node("Copy", ("inputs", "2"), ("from0", "rgba.alpha"), ("to0", "mask.alpha"), ("name", "MaskToOutput")),
        _node("Output", ("name", "Output1")),
    ]


def gizmo_text() -> str:
    """The text of ``DFLSwapNative.gizmo``."""
    header = "# generated by dfl_vfx.hosts.nuke_native_gizmo: do not edit, regenerate\n"
    statements: list[Node | Command] = [Command(NUKE_VERSION_LINE.split()),
                                        Command(["add_layer", "{mask mask.alpha}"]),
                                        Node("Gizmo", gizmo_knobs(), inner_graph())]
    return header + write(statements)


def write_gizmo(folder: Path = GIZMO_DIR) -> Path:
    from dfl_vfx.io.atomic import atomic_path

    target = folder / GIZMO_FILE
    with atomic_path(target) as temp:
        Path(temp).write_text(gizmo_text(), encoding="utf-8")
    return target


if __name__ == "__main__":  # python -m dfl_vfx.hosts.nuke_native_gizmo: regenerate nuke/gizmos/DFLSwapNative.gizmo
    print(write_gizmo())
