"""What the DFLSwapNative gizmo's Bake alignment button runs: the face's per-frame corner pins as animation curves.

The engine works them out (``dfl-vfx host matrices``, run as an argument list, never through a shell) from the
faceset's tracked faces and the model's resolution and face type; this module writes them into the gizmo's hidden
``pin1_x`` .. ``pin4_y`` knobs (one key per frame) and ``face_present`` (1 on frames with the face, 0 elsewhere), and
the model's size into ``resolution``. At comp time the gizmo needs no engine (docs/nuke.md, "Native path"). A problem
the compositor can fix is one ``nuke.message`` naming the node, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

import nuke
from dfl_host import EngineError, find_engine
from dfl_nuke.bake import BakeError, check_exr, engine_path

PIN_KNOBS = tuple(f"pin{i}_{axis}" for i in range(1, 5) for axis in "xy")
ALIGNMENT_FORMAT = "dfl_vfx.nuke_alignment"
ENGINE_TIMEOUT_S = 300


def _text(node: nuke.Node, name: str) -> str:
    knob = node.knob(name)
    return "" if knob is None else str(knob.value()).strip()


def curve(keys: Sequence[tuple[int, float]]) -> str:
    """A knob's animation as a .nk script value: ``{curve x1001 512.25 x1002 513.5}`` (one key per frame)."""
    return "{curve " + " ".join(f"x{frame} {value:.6f}".rstrip("0").rstrip(".") for frame, value in keys) + "}"


def pin_curves(answer: Mapping[str, Any], first: int, last: int) -> dict[str, str]:
    """The hidden knobs' curves from the engine's answer: the eight pin coordinates on the frames with the face,
    ``face_present`` on every frame of ``first``..``last``."""
    if answer.get("format") != ALIGNMENT_FORMAT:
        raise BakeError("the engine's answer is not an alignment; update the dfl-vfx engine")
    keys: dict[str, list[tuple[int, float]]] = {name: [] for name in PIN_KNOBS}
    present = set()
    for entry in answer["frames"]:
        frame = int(entry["frame"])
        present.add(frame)
        for i, (x, y) in enumerate(entry["pins"]):
            keys[f"pin{i + 1}_x"].append((frame, float(x)))
            keys[f"pin{i + 1}_y"].append((frame, float(y)))
    curves = {name: curve(values) for name, values in keys.items()}
    curves["face_present"] = curve([(frame, 1.0 if frame in present else 0.0) for frame in range(first, last + 1)])
    return curves


def alignment_command(exe: str, faceset: str, model: str, first: int, last: int, track: int,
                      plate: str | None = None, size: tuple[int, int] | None = None) -> list[str]:
    """The ``dfl-vfx host matrices`` argument list (each knob value one argument: spaces and quotes stay in it)."""
    command = [exe, "host", "matrices", faceset, f"--model={model}", f"--frames={first}-{last}"]
    command.append(f"--plate={plate}" if plate is not None else f"--format={size[0]}x{size[1]}" if size else "")
    if track >= 0:
        command.append(f"--track={track}")
    return [arg for arg in command if arg]


def plate_or_format(node: nuke.Node) -> tuple[str | None, tuple[int, int] | None]:
    """The input's EXR sequence (its display window is the format) or, for any other node, Nuke's format."""
    source = node.input(0)
    if source is None:
        raise BakeError(f"{node.name()}: no input; connect the plate")
    if source.Class() == "Read":
        return check_exr(_text(source, "file"), node.name(), source.name()), None
    form = source.format()
    return None, (int(form.width()), int(form.height()))


def run_engine(command: list[str], label: str) -> dict[str, Any]:
    """Run the engine and read its JSON answer; its one-line error (the last line of stderr) as a BakeError."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=ENGINE_TIMEOUT_S, check=False)
    except OSError as exc:
        raise BakeError(f"{label}: cannot run the engine {command[0]} ({exc.strerror or exc})") from None
    except subprocess.TimeoutExpired:
        raise BakeError(f"{label}: the engine gave no alignment within {ENGINE_TIMEOUT_S} s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        raise BakeError(f"{label}: bake alignment failed: {reason}")
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        raise BakeError(f"{label}: the engine's answer is not JSON; check the Engine knob") from None


def alignment_of(node: nuke.Node) -> tuple[dict[str, Any], int, int]:
    """(engine answer, first, last) for the node's knobs; a BakeError for anything the compositor must fix."""
    label = node.name()
    faceset = _text(node, "faceset")
    model = _text(node, "model")
    if not faceset:
        raise BakeError(f"{label}: no faceset; set Faceset to the plate's faceset (dfl-vfx extract or DFL Extract)")
    if not os.path.isdir(faceset):
        raise BakeError(f"{label}: faceset {faceset} does not exist; extract the plate first")
    if not model:
        raise BakeError(f"{label}: no model; set Model to the .pt from `dfl-vfx export --torchscript`")
    if not os.path.isfile(model):
        raise BakeError(f"{label}: model {model} does not exist; set Model to the exported .pt")
    first, last = int(node["first_frame"].value()), int(node["last_frame"].value())
    if last < first:
        raise BakeError(f"{label}: the frame range {first}-{last} runs backwards")
    plate, size = plate_or_format(node)
    try:
        exe = find_engine(engine_path(_text(node, "engine")))
    except EngineError as exc:
        raise BakeError(f"{label}: the dfl-vfx engine: {exc}") from None
    command = alignment_command(exe, faceset, model, first, last, int(node["track"].value()), plate, size)
    return run_engine(command, label), first, last


def apply(node: nuke.Node, answer: Mapping[str, Any], first: int, last: int) -> None:
    """Write the curves, the resolution and a status line into the node."""
    for name, script in pin_curves(answer, first, last).items():
        node[name].fromScript(script)
    node["resolution"].setValue(int(answer["resolution"]))
    missing = list(answer.get("missing") or [])
    note = f", no face on {len(missing)} frame(s) (the plate shows there)" if missing else ""
    node["status"].setValue(f"aligned {len(answer['frames'])} frame(s) at {answer['resolution']} px{note}")


def bake_alignment() -> None:
    """The Bake alignment button."""
    node = nuke.thisNode()
    try:
        answer, first, last = alignment_of(node)
        apply(node, answer, first, last)
    except BakeError as exc:
        nuke.message(str(exc))
