"""Bakes through the engine, without bpy: one ``dfl-vfx serve`` per Blender session and output folder (the model
stays loaded between bakes), a single frame, or a range in a worker thread whose progress the modal operator
polls and which it can cancel (frames in flight finish; the engine only ever leaves whole files).

The host client ``dfl_host`` is the engine's own (docs/dev/host-protocol.md); the bake folder is its
:func:`dfl_host.bake_cache`, so a live setting never forces a re-bake and two nodes never share a folder. A farm
submission (:func:`submit_to_farm`, through :mod:`dfl_host.farm`) swaps into that same folder.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dfl_host import (
    BakeCache,
    EngineClient,
    EngineError,
    RequestCancelled,
    Schema,
    SettingError,
    bake_cache,
    bake_hash,
)
from dfl_host.farm import SubmitFailed, Submitted, frames_text, shot_name, submit_shot

from . import bake_plan
from .bake_plan import BakeError

_lock = threading.Lock()
_clients: dict[tuple[str | None, str], EngineClient] = {}


def engine_client(exe: str | None, output_root: str) -> EngineClient:
    """The session's engine for this executable and output folder, started on first use."""
    key = (exe, output_root)
    with _lock:
        client = _clients.get(key)
        if client is None or not client.alive:
            client = EngineClient.start(exe=exe or None, output_root=output_root)
            _clients[key] = client
        return client


def close_clients() -> None:
    """Stop every engine this session started (on unregister and at exit)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


def bundled_schema() -> Schema:
    return Schema(bake_plan.load_schema())


@dataclass
class BakeRequest:
    """What a DFL Swap node asks for, read from Blender on the main thread."""

    node: str
    blend: str  # the .blend's path ("" when unsaved)
    exe: str | None
    cache_root: str
    plate: str  # a ``####`` sequence
    model: str
    faceset: str | None
    frames: list[int]
    values: Mapping[str, Any] = field(default_factory=dict)  # settings by schema name (re-bake and live)

    def settings(self) -> dict[str, Any]:
        return bake_plan.engine_settings(bake_plan.setting_specs(bake_plan.load_schema()), self.values)

    def folder_hash(self) -> str:
        """The hash naming this request's bake folder (model, plate and re-bake settings only)."""
        return bake_hash(bundled_schema(), self.settings(), self.model, self.plate)


def check_cache_root(path: str, node: str) -> str:
    """The cache folder, made and proven writable."""
    if not path:
        raise BakeError(f"{node}: set Cache folder (save the .blend first to use a // path)")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".dfl_write_check"):
            pass
    except OSError as exc:
        raise BakeError(f"{node}: Cache folder {path} cannot be written ({exc.strerror or exc}); choose a folder "
                        "you can write in") from None
    return path


def check_model(model: str, node: str) -> str:
    if not model.strip():
        raise BakeError(f"{node}: no model; set Model to a trained dfl-vfx model (.onnx, .dfm or model folder)")
    if not os.path.exists(model):
        raise BakeError(f"{node}: model {model} does not exist; set Model to a trained dfl-vfx model")
    return model


class Bake:
    """A checked request with its engine and bake folder; a problem is a :class:`BakeError` of one line."""

    def __init__(self, request: BakeRequest) -> None:
        node = request.node
        self.request = request
        self.model = check_model(request.model, node)
        if request.faceset and not os.path.isdir(request.faceset):
            raise BakeError(f"{node}: faceset {request.faceset} is not a folder; clear Faceset or extract one")
        self.frames = [f for f in request.frames
                       if os.path.exists(bake_plan.frame_file(request.plate, f))]
        if not self.frames:
            first, last = min(request.frames, default=0), max(request.frames, default=0)
            raise BakeError(f"{node}: no frame of {first}-{last} of the plate {request.plate} exists; check the "
                            "frame range and the plate's files")
        self.cache_root = check_cache_root(request.cache_root, node)
        self.settings = request.settings()
        self.cache = bake_cache(self.cache_root, request.blend, node, request.plate, self.model, self.settings,
                                bundled_schema())
        self._client: EngineClient | None = None

    def keep_folder(self, pattern: str) -> None:
        """Bake into the folder the node already reads (``pattern``, baked with these same settings), even if the
        .blend was saved under another name since: a farm node keeps filling the workstation's bake."""
        self.cache = BakeCache(os.path.dirname(pattern), pattern, self.cache.settings_hash)

    @property
    def client(self) -> EngineClient:
        """The session's engine for this bake's output folder, started on first use."""
        if self._client is None:
            try:
                self._client = engine_client(self.request.exe, self.cache_root)
            except EngineError as exc:
                raise BakeError(f"{self.request.node}: the dfl-vfx engine: {exc}; set its path in the add-on's "
                                "preferences (dfl-vfx host install blender does it)") from None
        return self._client

    def worded(self, exc: EngineError) -> str:
        if isinstance(exc, SettingError) and exc.setting:
            label = next((s.label for s in bake_plan.setting_specs(bake_plan.load_schema())
                          if s.name == exc.setting), exc.setting)
            return f"{self.request.node}: {exc.worded(label)}"
        return f"{self.request.node}: {exc}"

    def run_frame(self, frame: int) -> dict[str, Any]:
        """Bake one frame (blocking); the model stays loaded in the session's engine."""
        out = bake_plan.frame_file(self.cache.frames, frame)
        client = self.client
        try:
            return client.swap_frame(self.request.plate, frame, self.model, out=out, settings=self.settings,
                                          faceset=self.request.faceset)
        except EngineError as exc:
            raise BakeError(self.worded(exc)) from None


class RangeJob:
    """A range bake in a worker thread: :attr:`done` of :attr:`total` for a progress bar, :meth:`cancel`, and
    after :attr:`finished` either :attr:`error` (one line), :attr:`cancelled` or the engine's report."""

    def __init__(self, bake: Bake, jobs: int | None = None) -> None:
        self.bake = bake
        self.jobs = jobs  # frames in flight (None: the engine's default, 2)
        self.total = len(bake.frames)
        self.done = 0
        self.frame: int | None = None
        self.error: str | None = None
        self.cancelled = False
        self.report: dict[str, Any] = {}
        self.finished = threading.Event()
        self._cancel_asked = False
        self._call: Any = None
        self._thread = threading.Thread(target=self._run, name=f"dfl-bake-{bake.request.node}", daemon=True)

    def start(self) -> RangeJob:
        """Start the engine if needed (a :class:`BakeError` here, in the caller's thread), then the range."""
        _ = self.bake.client
        self._thread.start()
        return self

    def _progress(self, progress: Any) -> bool:
        self.done, self.total, self.frame = progress.done, progress.total, progress.frame
        return not self._cancel_asked

    def _run(self) -> None:
        bake = self.bake
        try:
            self._call = bake.client.start_swap_range(
                bake.request.plate, bake.model, bake.cache.folder, frames=bake_plan.frame_list(bake.frames),
                settings=bake.settings, faceset=bake.request.faceset, jobs=self.jobs,
                on_progress=self._progress)
            if self._cancel_asked:
                self._call.cancel()
            self.report = self._call.wait(timeout=None, idle_timeout=600) or {}
            failed = self.report.get("failed") or {}
            if failed:
                frame, error = sorted(failed.items())[0]
                self.error = (f"{bake.request.node}: {len(failed)} of {self.report.get('total', '?')} frames "
                              f"failed (frame {frame}: {error})")
        except RequestCancelled as exc:
            self.cancelled, self.report = True, exc.report
        except EngineError as exc:
            self.error = bake.worded(exc)
        finally:
            self.finished.set()

    def cancel(self) -> None:
        """Stop after the frames in flight (they finish whole)."""
        self._cancel_asked = True
        call = self._call
        if call is not None and not self.finished.is_set():
            try:
                call.cancel()
            except EngineError:
                pass  # the range ended meanwhile

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)


# settings of this workstation's engine that the farm's machines choose for themselves
MACHINE_SETTINGS = ("device", "backend", "batch", "merge_backend")


@dataclass
class FarmChoice:
    """The Submit dialog's answers."""

    engine: str
    pools: str = ""
    group: str = ""
    priority: int = 50
    chunk_size: int = 10
    dry_run_folder: str = ""


def farm_shot(bake: Bake, choice: FarmChoice) -> dict[str, dict[str, Any]]:
    """The shot file (docs/farm.md) of a node's bake: the farm swaps into the folder the node reads."""
    request = bake.request
    stem = os.path.splitext(os.path.basename(request.blend))[0]
    shot: dict[str, Any] = {"name": shot_name(f"{stem}_{request.node}" if stem else request.node),
                            "plate": request.plate, "frames": frames_text(bake.frames),
                            "output": bake.cache.folder,
                            "work_dir": os.path.join(os.path.dirname(bake.cache.folder), "farm")}
    if request.faceset:
        shot["faces"] = request.faceset
    farm: dict[str, Any] = {"priority": choice.priority, "chunk_size": choice.chunk_size,
                            "pools": choice.pools.replace(",", " ").split()}
    if choice.group:
        farm["group"] = choice.group
    return {"shot": shot, "model": {"reuse": bake.model},
            "merge": {key: value for key, value in bake.settings.items() if key not in MACHINE_SETTINGS},
            "farm": farm}


def submit_to_farm(bake: Bake, choice: FarmChoice) -> Submitted:
    """Write the shot file beside the bake folder and run ``dfl-vfx farm submit`` (blocking: the farm's answer, or
    for a local ``openjd`` run the whole job); a refusal is a :class:`BakeError` of one line."""
    document = farm_shot(bake, choice)
    path = os.path.join(os.path.dirname(bake.cache.folder), "farm", f"{document['shot']['name']}.toml")
    out = choice.dry_run_folder or None
    try:
        return submit_shot(path, document, choice.engine, exe=bake.request.exe, dry_run=out is not None, out=out,
                           engine_exe=bake.request.exe)
    except (SubmitFailed, OSError, ValueError) as exc:
        raise BakeError(f"{bake.request.node}: farm submission refused: {exc}") from None
