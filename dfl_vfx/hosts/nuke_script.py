"""A Nuke script for a shot: plate Read -> DFLSwap -> Write (``dfl-vfx host script nuke``; ``make demo`` writes
``build/demo/comp.nk``).

Owns the text of that script, written with the same writer the gizmos use (:mod:`dfl_vfx.hosts.nk`), so it
round-trips through our parser and opens in Nuke with the plugin installed (``dfl-vfx host install nuke``).
"""

from __future__ import annotations

from pathlib import Path

from dfl_vfx.hosts.nk import Command, Knob, Node, quote, write
from dfl_vfx.hosts.nuke_gizmo import NUKE_VERSION_LINE


def _node(cls: str, knobs: list[tuple[str, str]]) -> Node:
    return Node(cls, [Knob(name, value) for name, value in knobs])


def comp_script(plate: str, model: str, cache_root: str, out: str, first: int, last: int,
                script_name: str = "comp.nk") -> str:
    """The script's text: the plate read raw (scene-linear as it is), a DFLSwap set up for the model and frame range,
    and a Write of the swapped plate with its ``mask`` channel."""
    frames = [("first", str(first)), ("last", str(last)), ("origfirst", str(first)), ("origlast", str(last))]
    statements = [
        Command(NUKE_VERSION_LINE.split()),
        _node("Root", [("inputs", "0"), ("name", quote(script_name)), ("first_frame", str(first)),
                       ("last_frame", str(last))]),
        _node("Read", [("inputs", "0"), ("file_type", "exr"), ("file", quote(plate)), *frames,
                       ("on_error", "black"), ("raw", "true"), ("name", "Plate")]),
        _node("DFLSwap", [("model", quote(model)), ("cache_root", quote(cache_root)),
                          ("first_frame", str(first)), ("last_frame", str(last)), ("name", "DFLSwap1")]),
        _node("Write", [("channels", "all"), ("file", quote(out)), ("file_type", "exr"), ("raw", "true"),
                        ("name", "Write1")]),
    ]
    return write(statements)


def write_comp_script(path: Path, plate: str, model: str, cache_root: str, out: str, first: int,
                      last: int) -> Path:
    from dfl_vfx.io.atomic import atomic_path

    with atomic_path(path) as temp:
        Path(temp).write_text(comp_script(plate, model, cache_root, out, first, last, path.name), encoding="utf-8")
    return path
