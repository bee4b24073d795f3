"""What the DFLExtract panel's buttons run: ``dfl-vfx extract`` of the node's input into a faceset, and a
``dfl-vfx train`` run in the background, each with a ``nuke.ProgressTask`` and a cancel.

Both are engine subprocesses started with argument lists (:mod:`dfl_host.commands`), never a shell, so a knob value
with spaces, quotes or ``;`` stays one plain argument. Their log lines on stderr give the progress (extract's
``12/48 frames``, the trainer's ``iteration N``). Cancel sends SIGTERM: the trainer finishes its step, saves a
checkpoint and exits, so the model folder resumes on the next Start; an extract keeps the faces it wrote and a rerun
goes on from there. The input is read as the bake reads it: a Read of an EXR sequence directly (its colourspace
honoured), any other node rendered to a temporary EXR sequence first (:mod:`dfl_nuke.inputs`). A problem the
compositor can fix is one ``nuke.message``, never a traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import nuke
from dfl_host import EngineError, extract_command, find_engine, train_command
from dfl_nuke import inputs
from dfl_nuke.bake import BakeError, check_exr, engine_colourspace, engine_path

FRAMES_DONE = re.compile(r"(\d+)/(\d+) frames")
ITERATION = re.compile(r"^iteration (\d+) ")
TIME_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
STOP_WAIT_S = 120.0  # a training step and the checkpoint write

_runs: dict[str, EngineRun] = {}  # "<node full name>:extract" / ":train" -> the run in progress


def _text(node: nuke.Node, name: str) -> str:
    knob = node.knob(name)
    return "" if knob is None else str(knob.value()).strip()


def time_limit_s(text: str) -> float | None:
    """``90s``, ``25m``, ``8h`` (or plain seconds) in seconds; None for empty or unreadable text."""
    match = TIME_LIMIT.match(text)
    return float(match.group(1)) * SECONDS[match.group(2)] if match else None


class EngineRun:
    """An engine subprocess followed from a worker thread: stderr lines become progress, Cancel stops it."""

    def __init__(self, key: str, command: list[str], title: str, progress: Callable[[str], int | None],
                 finished: Callable[[EngineRun], None]) -> None:
        self.key = key
        self.command = command
        self.title = title
        self.progress = progress
        self.finished = finished
        self.process: subprocess.Popen | None = None
        self.cancelled = False
        self.returncode: int | None = None
        self.last_line = ""

    def start(self) -> threading.Thread:
        try:
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, text=True, errors="replace")
        except OSError as exc:
            raise BakeError(f"{self.key}: cannot start {self.command[0]} ({exc.strerror or exc})") from None
        _runs[self.key] = self
        worker = threading.Thread(target=self._follow, name=f"dfl-{self.key}", daemon=True)
        worker.start()
        return worker

    def _follow(self) -> None:
        task: Any = nuke.ProgressTask(self.title)
        process = self.process
        assert process is not None and process.stderr is not None
        try:
            for raw in process.stderr:
                line = raw.strip()
                if not line:
                    continue
                self.last_line = line
                percent = self.progress(line)
                if percent is not None:
                    task.setProgress(max(0, min(100, percent)))
                task.setMessage(line[:120])
                if task.isCancelled() and not self.cancelled:
                    self.cancel()
            self.returncode = process.wait()
        finally:
            _runs.pop(self.key, None)
            task = None  # Nuke closes the progress bar when its ProgressTask goes away
        nuke.executeInMainThread(self.finished, args=(self,))

    def cancel(self) -> None:
        """SIGTERM: the engine stops cleanly (the trainer saves its checkpoint first)."""
        self.cancelled = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def wait(self, timeout: float = STOP_WAIT_S) -> int | None:
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


# -- extract ------------------------------------------------------------------------------------------------------

def extract_plate(node: nuke.Node, first: int, last: int, folder: str) -> tuple[str, str | None]:
    """(plate pattern, colourspace) of the node's input: an EXR Read directly, anything else rendered first."""
    source = node.input(0)
    label = node.name()
    if source is None:
        raise BakeError(f"{label}: no input; connect the plate")
    if source.Class() == "Read":
        pattern = check_exr(_text(source, "file"), label, source.name())
        raw = _text(source, "raw") in ("True", "true", "1")
        return pattern, None if raw else engine_colourspace(_text(source, "colorspace"))

    def execute(target: str) -> None:
        write = nuke.nodes.Write(file=target.replace(os.sep, "/"), file_type="exr", raw=True, channels="rgba")
        write.setInput(0, source)
        try:
            nuke.execute(write, first, last)
        finally:
            nuke.delete(write)

    try:
        return inputs.render(folder, node.fullName(), execute), None
    except RuntimeError as exc:
        raise BakeError(f"{label}: rendering the input stopped ({str(exc).strip() or 'cancelled'})") from None


def _engine(node: nuke.Node) -> str:
    try:
        return find_engine(engine_path(_text(node, "engine")))
    except EngineError as exc:
        raise BakeError(f"{node.name()}: the dfl-vfx engine: {exc}") from None


def extract_arguments(node: nuke.Node) -> list[str]:
    """The ``dfl-vfx extract`` argument list for the node (renders a non-Read input first)."""
    label = node.name()
    faceset = _text(node, "faceset")
    if not faceset:
        raise BakeError(f"{label}: set Faceset folder to where the faceset goes")
    first, last = int(node["first_frame"].value()), int(node["last_frame"].value())
    if last < first:
        raise BakeError(f"{label}: the frame range {first}-{last} runs backwards")
    exe = _engine(node)
    parent = os.path.dirname(os.path.abspath(faceset))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise BakeError(f"{label}: Faceset folder {faceset}: cannot create ({exc.strerror or exc})") from None
    plate, colourspace = extract_plate(node, first, last, parent)
    return extract_command(plate, faceset, exe, frames=f"{first}-{last}", face_type=_text(node, "face_type"),
                           size=int(node["size"].value()), select=_text(node, "select"),
                           jobs=int(node["jobs"].value()), colorspace=colourspace)


def extract_progress(line: str) -> int | None:
    """Percent from extract's log lines: its detect pass (``detect: 12/48 frames``) is the first 90 %, the align
    pass the rest."""
    match = FRAMES_DONE.search(line)
    if match is None:
        return None
    share = int(match.group(1)) / max(1, int(match.group(2)))
    return int(90 * share) if line.startswith("detect") else int(90 + 10 * share)


def _extract_finished(run: EngineRun) -> None:
    node = nuke.toNode(run.key.rsplit(":", 1)[0])
    if run.returncode == 0:
        text = f"faceset written: {run.command[3][len('--out='):]}"
    elif run.cancelled:
        text = "extract cancelled: the faces written so far stay; Extract again goes on from there"
    else:
        text = f"extract failed: {run.last_line or f'exit status {run.returncode}'}"
        nuke.message(f"{run.key.rsplit(':', 1)[0]}: {text}")
    if node is not None:
        node["status"].setValue(text)


def _start(node: nuke.Node, kind: str, arguments: Callable[[nuke.Node], list[str]], title: str,
           progress: Callable[[str], int | None], finished: Callable[[EngineRun], None]) -> threading.Thread | None:
    key = f"{node.fullName()}:{kind}"
    if key in _runs:
        nuke.message(f"{node.name()}: a {kind} is already running; Cancel it first")
        return None
    try:
        run = EngineRun(key, arguments(node), title, progress, finished)
        worker = run.start()
    except BakeError as exc:
        nuke.message(str(exc))
        return None
    node["status"].setValue(f"{kind} running")
    return worker


def extract_faceset() -> threading.Thread | None:
    """The Extract faceset button: ``dfl-vfx extract`` in the background (the worker thread is returned)."""
    node = nuke.thisNode()
    return _start(node, "extract", extract_arguments, f"DFL extract {node.name()}", extract_progress,
                  _extract_finished)


def cancel_extract() -> None:
    run = _runs.get(f"{nuke.thisNode().fullName()}:extract")
    if run is not None:
        run.cancel()


# -- training -----------------------------------------------------------------------------------------------------

def train_arguments(node: nuke.Node) -> list[str]:
    """The ``dfl-vfx train`` argument list: the node's faceset as dst, its source faceset and model folder."""
    label = node.name()
    dst, src, model_dir = _text(node, "faceset"), _text(node, "src_faceset"), _text(node, "model_dir")
    for value, what in ((src, "Source faceset"), (dst, "Faceset folder")):
        if not value:
            raise BakeError(f"{label}: set {what} first")
        if not os.path.isdir(value):
            raise BakeError(f"{label}: {what} {value} does not exist; extract it first")
    if not model_dir:
        raise BakeError(f"{label}: set Model folder to where the model goes (an existing one resumes)")
    max_time = _text(node, "max_time")
    if max_time and time_limit_s(max_time) is None:
        raise BakeError(f"{label}: Time limit {max_time!r}: give e.g. 90s, 25m or 8h")
    exe = _engine(node)
    preset = _text(node, "preset")
    device = _text(node, "device")
    iterations = int(node["max_iters"].value())
    command = train_command(src, dst, model_dir, exe, preset=None if preset in ("", "default") else preset,
                            max_time=max_time or None, max_iters=iterations if iterations > 0 else None,
                            device=None if device in ("", "auto") else device)
    return command + [f"--set={item}" for item in _text(node, "train_settings").split()]


class TrainProgress:
    """Percent of the run from the trainer's ``iteration N`` lines: of the iteration limit when there is one, else
    of the time limit."""

    def __init__(self, max_iters: int, max_time_s: float | None) -> None:
        self.max_iters = max_iters
        self.max_time_s = max_time_s
        self.start = time.monotonic()
        self.first: int | None = None

    def __call__(self, line: str) -> int | None:
        match = ITERATION.match(line)
        if match is None:
            return None
        iteration = int(match.group(1))
        if self.max_iters > 0:
            return int(100 * iteration / self.max_iters)
        if self.max_time_s:
            return int(100 * (time.monotonic() - self.start) / self.max_time_s)
        return None


def _train_finished(run: EngineRun) -> None:
    name = run.key.rsplit(":", 1)[0]
    node = nuke.toNode(name)
    if run.returncode == 0:
        text = f"training stopped: {run.last_line}"  # "stopped (max_time) at iteration N ..."
    elif run.cancelled:
        text = f"training stopped before it began: {run.last_line}"
    else:
        text = f"training failed: {run.last_line or f'exit status {run.returncode}'}"
        nuke.message(f"{name}: {text}")
    if node is not None:
        node["status"].setValue(text)


def start_training() -> threading.Thread | None:
    """The Start training button: ``dfl-vfx train`` in the background; Stop (or the progress bar's Cancel) saves
    the checkpoint and ends the run, and the next Start resumes it."""
    node = nuke.thisNode()
    progress = TrainProgress(int(node["max_iters"].value()), time_limit_s(_text(node, "max_time")))
    return _start(node, "training", train_arguments, f"DFL training {node.name()}", progress, _train_finished)


def stop_all(timeout: float = STOP_WAIT_S) -> None:
    """Stop every extract and training run of this session and wait for them (Nuke calls it at exit through
    init.py), so no engine outlives Nuke and a training run saves its checkpoint."""
    runs = list(_runs.values())
    for run in runs:
        run.cancel()
    for run in runs:
        run.wait(timeout)


def stop_training() -> None:
    run = _runs.get(f"{nuke.thisNode().fullName()}:training")
    if run is not None:
        run.cancel()
