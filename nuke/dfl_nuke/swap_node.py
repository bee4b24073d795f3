"""What the DFLSwap / DFLMask gizmos' buttons and callbacks run inside Nuke.

Bake frame goes through one ``dfl-vfx serve`` per Nuke session (the model stays loaded between clicks); Bake range
runs in a worker thread with a ``nuke.ProgressTask`` (its Cancel, or the node's Cancel button, stops the engine
after the frames in flight). Knob values reach the engine as plain JSON values, never through a shell. A problem
the compositor can fix is a ``nuke.message`` of one line, never a traceback.
"""

from __future__ import annotations

import math
import os
import shlex
import threading
from typing import Any

import nuke
from dfl_host import BakeCache, EngineClient, EngineError, RequestCancelled, Schema, bake_cache, swap_command
from dfl_nuke import inputs
from dfl_nuke.bake import (
    BakeError,
    cached_px_per_unit,
    check_exr,
    check_model,
    engine_colourspace,
    engine_path,
    frame_file,
    frame_list,
    knob_settings,
    largest_face_px_per_unit,
    present_frames,
)

STALE_COLOR = 0xB22222FF
FRESH_COLOR = 0x4A6FA5FF
STALE_TEXT = "stale: re-bake"
# px_per_unit as a saved script gives it back (it may hold fewer digits than the header): closer than this is equal
PX_PER_UNIT_RTOL = 1e-6
SWAP_GIZMOS = ("DFLSwap", "DFLMask")
# knobs whose change does not call for a re-bake (panel, position, the live settings come from the schema)
NEVER_STALE = frozenset({"showPanel", "hidePanel", "inputChange", "xpos", "ypos", "selected", "label",
                         "tile_color", "stale", "stale_label", "bake_file", "bake_hash", "bake_first", "bake_last",
                         "px_per_unit", "cache_root", "first_frame", "last_frame", "bake_frame", "bake_range",
                         "cancel_bake", "show_farm_command", "submit_farm", "name"})

_client_lock = threading.Lock()
_clients: dict[tuple[str | None, str], EngineClient] = {}
_running: dict[str, Any] = {}  # node full name -> the engine call of its running range


# -- engine ------------------------------------------------------------------------------------------------------

def engine_client(exe: str | None, output_root: str) -> EngineClient:
    """The session's engine for this executable, started once and re-greeted with the output root."""
    key = (exe, output_root)
    with _client_lock:
        client = _clients.get(key)
        if client is None or not client.alive:
            client = EngineClient.start(exe=exe, output_root=output_root)
            _clients[key] = client
        return client


def close_clients() -> None:
    """Stop every engine this session started (Nuke calls it at exit through init.py)."""
    with _client_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


# -- knobs -------------------------------------------------------------------------------------------------------

def _text(node: nuke.Node, name: str) -> str:
    knob = node.knob(name)
    return "" if knob is None else str(knob.value())


def settings_from(node: nuke.Node, schema: Schema) -> dict[str, Any]:
    values = {name: node[name].value() for name in schema.names if node.knob(name) is not None}
    return knob_settings(schema, values)


def mark_stale(node: nuke.Node, stale: bool) -> None:
    """The warning in the label (through the stale_label knob) and the tile colour."""
    node["stale"].setValue(stale)
    node["stale_label"].setValue(STALE_TEXT if stale else "")
    node["tile_color"].setValue(STALE_COLOR if stale else FRESH_COLOR)


def on_create() -> None:
    """A node created or loaded (also in a farm's ``nuke -x``): its stale mark, and px_per_unit from its cache."""
    node = nuke.thisNode()
    mark_stale(node, bool(_text(node, "bake_hash")) and bool(node["stale"].value()))
    refresh_px_per_unit(node)


def refresh_px_per_unit(node: nuke.Node) -> None:
    """Set px_per_unit from the header of the first cached frame of the node's bake, read without the engine, when
    it differs: frames another process baked (the farm's swap, a `dfl-vfx swap` by hand) size the live erode and blur
    as a bake here would. Only a different value is set, so a loaded script is not marked modified; without a cached
    frame or a readable header the knob keeps its value."""
    pattern = _text(node, "bake_file")
    if not pattern:
        return
    unit = cached_px_per_unit(pattern, int(node["bake_first"].value()), int(node["bake_last"].value()))
    if unit is not None and not math.isclose(unit, float(node["px_per_unit"].value()), rel_tol=PX_PER_UNIT_RTOL):
        node["px_per_unit"].setValue(unit)


def before_render() -> None:
    """Before a Write renders (init.py registers it): every DFL swap and mask node's px_per_unit from its cache,
    for frames the farm baked after the script was loaded."""
    for node in nuke.allNodes(recurseGroups=True):
        if node.Class() in SWAP_GIZMOS:
            refresh_px_per_unit(node)


def knob_changed() -> None:
    """A re-bake knob changed after a bake: mark the node stale. Live knobs (schema ``live``) never do."""
    node, knob = nuke.thisNode(), nuke.thisKnob()
    name = knob.name()
    if name in NEVER_STALE or not _text(node, "bake_hash"):
        return
    if name in LIVE_KNOBS:
        return
    mark_stale(node, True)


# set from the schema the gizmo was generated from: the knobs whose tooltip says "no re-bake"
LIVE_KNOBS = frozenset({"erode", "blur", "opacity", "face_exposure"})


# -- input ------------------------------------------------------------------------------------------------------

def plate_of(node: nuke.Node, first: int, last: int, cache_folder: str) -> tuple[str, list[int], str | None]:
    """(plate pattern, frames to bake, colourspace) of the node's input: a Read of an EXR sequence directly
    (its colourspace, frame range and missing-frame setting honoured), anything else rendered to EXRs first."""
    source = node.input(0)
    name = node.name()
    if source is None:
        raise BakeError(f"{name}: no input; connect the plate")
    frames = list(range(first, last + 1))
    if source.Class() == "Read":
        pattern = check_exr(_text(source, "file"), name, source.name())
        read_first, read_last = int(source["first"].value()), int(source["last"].value())
        frames = [f for f in frames if read_first <= f <= read_last]
        present, missing = present_frames(pattern, frames)
        if missing and _text(source, "on_error") == "error":
            raise BakeError(f"{name}: {source.name()} misses frames {frame_list(missing)} and its Missing frames "
                            "is error; render them or set Missing frames to black")
        raw = _text(source, "raw") in ("True", "true", "1")
        return pattern, present, None if raw else engine_colourspace(_text(source, "colorspace"))
    return render_upstream(node, frames, cache_folder), frames, None


def render_upstream(node: nuke.Node, frames: list[int], cache_folder: str) -> str:
    """Render the node's input to a temporary EXR sequence with a Write (raw: the pixels as they are), in a fresh
    folder that supersedes the node's earlier ones (dfl_nuke.inputs); a cancelled render leaves no folder."""
    if node.fullName() in _running:
        raise BakeError(f"{node.name()}: a bake is already running; Cancel it first")

    def execute(pattern: str) -> None:
        write = nuke.nodes.Write(file=pattern.replace(os.sep, "/"), file_type="exr", raw=True, channels="rgba")
        write.setInput(0, node.input(0))
        try:
            nuke.execute(write, frames[0], frames[-1])
        finally:
            nuke.delete(write)

    try:
        return inputs.render(cache_folder, node.fullName(), execute)
    except RuntimeError as exc:  # Nuke raises RuntimeError for a cancelled or failed render
        raise BakeError(f"{node.name()}: rendering the input stopped ({str(exc).strip() or 'cancelled'}); "
                        "nothing was baked") from None


# -- bakes --------------------------------------------------------------------------------------------------------

class Bake:
    """Everything one bake sends to the engine, read from the node on the main thread."""

    def __init__(self, node: nuke.Node, single_frame: int | None = None) -> None:
        self.node_name = node.fullName()
        label = node.name()
        cache_root = _text(node, "cache_root").strip()
        if not cache_root:
            raise BakeError(f"{label}: set Cache folder to a folder the bake may write in")
        self.exe = engine_path(_text(node, "engine"))
        self.model = check_model(_text(node, "model"), label)
        self.faceset = _text(node, "faceset").strip() or None
        first = single_frame if single_frame is not None else int(node["first_frame"].value())
        last = single_frame if single_frame is not None else int(node["last_frame"].value())
        if last < first:
            raise BakeError(f"{label}: the frame range {first}-{last} runs backwards")
        try:
            os.makedirs(cache_root, exist_ok=True)
        except OSError as exc:
            raise BakeError(f"{label}: Cache folder {cache_root}: cannot create ({exc.strerror or exc})") from None
        plate, self.frames, colourspace = plate_of(node, first, last, cache_root)
        try:
            self.client = engine_client(self.exe, cache_root)
            self.schema = self.client.schema()
        except EngineError as exc:
            raise BakeError(f"{label}: the dfl-vfx engine: {exc}") from None
        self.settings = settings_from(node, self.schema)
        if colourspace:
            self.settings["colorspace"] = colourspace
        if not self.frames:
            raise BakeError(f"{label}: no frame of {first}-{last} exists in the input; check the frame range")
        self.plate = plate
        script = nuke.root().name()
        self.cache: BakeCache = bake_cache(cache_root, "" if script == "Root" else script, node.name(),
                                           plate, self.model, self.settings, self.schema)

    def run_frame(self) -> dict[str, Any]:
        frame = self.frames[0]
        out = frame_file(self.cache.frames, frame)
        return self.client.swap_frame(self.plate, frame, self.model, out=out, settings=self.settings,
                                      faceset=self.faceset)

    def start_range(self, on_progress: Any) -> Any:
        return self.client.start_swap_range(self.plate, self.model, self.cache.folder, frames=frame_list(self.frames),
                                            settings=self.settings, faceset=self.faceset, on_progress=on_progress)

    def px_per_unit(self) -> float | None:
        for frame in self.frames:
            path = frame_file(self.cache.frames, frame)
            if os.path.exists(path):
                return largest_face_px_per_unit(self.client.inspect(path))
        return None


def finish(node_name: str, bake: Bake, px_per_unit: float | None) -> None:
    """Point the gizmo's Read at the bake (main thread)."""
    node = nuke.toNode(node_name)
    if node is None:
        return
    node["bake_file"].setValue(bake.cache.frames.replace(os.sep, "/"))
    node["bake_hash"].setValue(bake.cache.settings_hash)
    node["bake_first"].setValue(bake.frames[0])
    node["bake_last"].setValue(bake.frames[-1])
    if px_per_unit:
        node["px_per_unit"].setValue(px_per_unit)
    mark_stale(node, False)


def _start(single_frame: bool) -> Bake | None:
    node = nuke.thisNode()
    try:
        return Bake(node, int(nuke.frame()) if single_frame else None)
    except BakeError as exc:
        nuke.message(str(exc))
        return None


def bake_frame() -> None:
    """Bake the current frame through the session's engine (the model stays loaded)."""
    bake = _start(single_frame=True)
    if bake is None:
        return
    try:
        bake.run_frame()
        finish(bake.node_name, bake, bake.px_per_unit())
    except EngineError as exc:
        nuke.message(f"{bake.node_name}: bake of frame {bake.frames[0]} failed: {exc}")


def bake_range() -> threading.Thread | None:
    """Bake the frame range in a worker thread (returned), with a progress bar whose Cancel stops the engine."""
    bake = _start(single_frame=False)
    if bake is None:
        return None
    if bake.node_name in _running:
        nuke.message(f"{bake.node_name}: a bake is already running; Cancel it first")
        return None
    _running[bake.node_name] = None
    worker = threading.Thread(target=run_range, args=(bake,), name=f"dfl-bake-{bake.node_name}", daemon=True)
    worker.start()
    return worker


class ProgressRelay:
    """The engine's progress into a ProgressTask; False (cancel) once the compositor pressed its Cancel."""

    def __init__(self, task: Any) -> None:
        self.task = task

    def __call__(self, progress: Any) -> bool:
        if self.task is None:
            return True
        self.task.setProgress(int(100 * progress.done / max(1, progress.total)))
        self.task.setMessage(f"frame {progress.frame} ({progress.done}/{progress.total})")
        return not self.task.isCancelled()


def run_range(bake: Bake) -> None:
    """The worker thread of :func:`bake_range` (engine work never blocks Nuke's main thread)."""
    relay = ProgressRelay(nuke.ProgressTask(f"DFL bake {bake.node_name}"))
    try:
        call = bake.start_range(relay)
        _running[bake.node_name] = call
        result = call.wait(timeout=None, idle_timeout=600) or {}
        failed = result.get("failed") or {}
        if failed:
            frame, error = sorted(failed.items())[0]
            raise EngineError(f"{len(failed)} of {result.get('total', '?')} frames failed (frame {frame}: {error})")
        px = bake.px_per_unit()
        nuke.executeInMainThread(finish, args=(bake.node_name, bake, px))
    except RequestCancelled:
        pass
    except EngineError as exc:
        nuke.executeInMainThread(nuke.message, args=(f"{bake.node_name}: bake failed: {exc}",))
    finally:
        _running.pop(bake.node_name, None)
        relay.task = None  # Nuke closes the progress bar when its ProgressTask goes away


def farm_command(bake: Bake) -> list[str]:
    """The ``dfl-vfx swap`` a farm job runs for this node's range: same plate, model, settings and cache folder,
    so the node reads its frames (and a bake in Nuke afterwards skips them as done)."""
    return swap_command(bake.schema, bake.plate, bake.model, bake.cache.folder, bake.settings,
                        frames=frame_list(bake.frames), faceset=bake.faceset, progress=False, exe=bake.exe)


def show_farm_command() -> None:
    """Show the farm bake command of the node (to paste into a farm job) and point the node at its folder."""
    bake = _start(single_frame=False)
    if bake is None:
        return
    finish(bake.node_name, bake, None)
    nuke.message(shlex.join(farm_command(bake)))


def cancel_bake() -> None:
    """Stop the node's running range after the frames in flight (finished frames stay; no partial file)."""
    call = _running.get(nuke.thisNode().fullName())
    if call is not None:
        call.cancel()
