"""The DFLSwap gizmo's Submit button: the node's swap (and, if asked, this script's comp) as a farm job.

The node is read as a bake reads it (plate, frames, model, face selection, settings, cache folder: the farm swaps
into the folder the node reads), a panel asks for the farm settings, and :mod:`dfl_host.farm` writes the shot file
and runs ``dfl-vfx farm submit`` (an argument list, in a worker thread). The engine checks everything before it
writes or submits anything; its one-line answer is a ``nuke.message``. The input must be a Read of an EXR
sequence: the farm reads the plate itself. A job with this script's comp renders the script as saved, so before
such a submission the node is pointed at the farm's folder and the script saved (and both undone if refused).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import nuke
from dfl_host.farm import ENGINES, SubmitFailed, Submitted, frames_text, shot_name, submit_shot
from dfl_nuke.bake import BakeError
from dfl_nuke.swap_node import Bake, finish, mark_stale

ENGINE_ENV = "DFL_FARM_ENGINE"  # the engine the panel offers first (default: openjd)
# settings of this workstation's engine that the farm's machines choose for themselves
MACHINE_SETTINGS = ("device", "backend", "batch", "merge_backend")
FIELDS = ("engine", "pools", "group", "priority", "chunk size", "show", "comp write node", "dry run folder")
POINTER_KNOBS = ("bake_file", "bake_hash", "bake_first", "bake_last", "stale")  # what pointing at a bake changes


def _engines() -> list[str]:
    first = os.environ.get(ENGINE_ENV, "openjd")
    return ([first] if first in ENGINES else []) + [name for name in ENGINES if name != first]


def ask_farm(label: str) -> dict[str, str] | None:
    """The farm settings from a panel; None when cancelled."""
    panel = nuke.Panel(f"Submit {label} to the farm")
    panel.addEnumerationPulldown("engine", " ".join(_engines()))
    for name, default in (("pools", ""), ("group", ""), ("priority", "50"), ("chunk size", "10"),
                          ("show", os.environ.get("SHOW", "")), ("comp write node", ""), ("dry run folder", "")):
        panel.addSingleLineInput(name, default)
    if not panel.show():
        return None
    return {name: str(panel.value(name) or "").strip() for name in FIELDS}


def _whole(label: str, name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BakeError(f"{label}: {name} {text!r}: give a whole number") from None


def node_shot(bake: Bake, choice: dict[str, str], label: str) -> dict[str, dict[str, Any]]:
    """The shot file's tables for the node and the panel's choice."""
    script = nuke.root().name()
    name = shot_name(f"{os.path.splitext(os.path.basename(script))[0]}_{label}" if script != "Root" else label)
    shot: dict[str, Any] = {"name": name, "plate": bake.plate, "frames": frames_text(bake.frames),
                            "output": bake.cache.folder,
                            "work_dir": os.path.join(os.path.dirname(bake.cache.folder), "farm")}
    if bake.faceset:
        shot["faces"] = bake.faceset
    farm: dict[str, Any] = {"priority": _whole(label, "priority", choice["priority"]),
                            "chunk_size": _whole(label, "chunk size", choice["chunk size"]),
                            "pools": choice["pools"].replace(",", " ").split()}
    for key in ("group", "show"):
        if choice[key]:
            farm[key] = choice[key]
    document: dict[str, dict[str, Any]] = {
        "shot": shot, "model": {"reuse": bake.model},
        "merge": {key: value for key, value in bake.settings.items() if key not in MACHINE_SETTINGS},
        "farm": farm}
    if choice["comp write node"]:
        if script == "Root":
            raise BakeError(f"{label}: save the script first: the farm renders the comp from the saved script")
        document["comp"] = {"nuke": script, "write": choice["comp write node"],
                            "version": f"{nuke.NUKE_VERSION_MAJOR}.{nuke.NUKE_VERSION_MINOR}"}
    return document


def submit_farm() -> threading.Thread | None:
    """The Submit button: ask, then submit in a worker thread (returned); the outcome is a message."""
    node = nuke.thisNode()
    label = node.name()
    source = node.input(0)
    if source is None or source.Class() != "Read":
        nuke.message(f"{label}: connect a Read of the plate's EXR sequence; the farm reads the plate itself")
        return None
    choice = ask_farm(label)
    if choice is None:
        return None
    try:
        bake = Bake(node)
        document = node_shot(bake, choice, label)
    except BakeError as exc:
        nuke.message(str(exc))
        return None
    path = os.path.join(os.path.dirname(bake.cache.folder), "farm", f"{document['shot']['name']}.toml")
    out = choice["dry run folder"] or None
    previous = point_and_save(node, bake) if "comp" in document and out is None else None
    worker = threading.Thread(target=run_submit, args=(bake, path, document, choice["engine"], out, previous),
                              name=f"dfl-submit-{label}", daemon=True)
    worker.start()
    return worker


def point_and_save(node: nuke.Node, bake: Bake) -> dict[str, Any]:
    """Before a job whose comp renders this script: point the node at the folder the farm swaps into and save the
    script, since the farm renders the script as saved (a DFLSwap without that bake passes the plate through
    unswapped). Returns the pointer knobs' values before, for :func:`restore_and_save` if the farm refuses."""
    previous = {name: node[name].value() for name in POINTER_KNOBS}
    finish(bake.node_name, bake, None)
    nuke.scriptSave()
    return previous


def restore_and_save(node_name: str, previous: dict[str, Any]) -> None:
    """Point the node back at the bake it read before a refused submission, and save that (main thread)."""
    node = nuke.toNode(node_name)
    if node is not None:
        for name in POINTER_KNOBS[:-1]:
            node[name].setValue(previous[name])
        mark_stale(node, bool(previous["stale"]))
        nuke.scriptSave()


def run_submit(bake: Bake, path: str, document: dict[str, dict[str, Any]], engine: str, out: str | None,
               previous: dict[str, Any] | None = None) -> None:
    """The worker thread of :func:`submit_farm`."""
    try:
        result = submit_shot(path, document, engine, exe=bake.exe, dry_run=out is not None, out=out,
                             engine_exe=bake.exe)
    except (SubmitFailed, OSError, ValueError) as exc:
        if previous is not None:
            nuke.executeInMainThread(restore_and_save, args=(bake.node_name, previous))
        nuke.executeInMainThread(nuke.message, args=(f"{bake.node_name}: farm submission refused: {exc}",))
        return
    nuke.executeInMainThread(done, args=(bake, result, out))


def done(bake: Bake, result: Submitted, out: str | None) -> None:
    """Point the node at the folder the farm fills (main thread) and say what happened."""
    finish(bake.node_name, bake, None)
    if out is not None:
        nuke.message(f"{bake.node_name}: {result.engine} job written to {out} ({len(result.files)} files); "
                     f"shot file {result.shot_file}")
    else:
        ids = ", ".join(result.job_ids) or "run on this machine"
        nuke.message(f"{bake.node_name}: submitted to {result.engine}: {ids}; shot file {result.shot_file}")
