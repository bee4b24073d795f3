"""The frame loop of a shot, shared by `dfl-vfx extract` (both passes), `dfl-vfx swap` and `dfl-vfx eval`.

:func:`run_frames` takes the frames to do and a per-frame job, and:

- records the frames whose input is missing and skips those the caller's check says are already done (an output
  written with the same settings, a cached detection), so a rerun resumes;
- runs the job on an executor: in this thread (the default), a thread pool it owns (``threads``) or the caller's
  (a process pool), with at most ``in_flight`` frames submitted at a time;
- records each frame as done (its result handed to ``on_result``) or failed: a `DflError` from the job, or a
  reason ``on_result`` returns. A failed frame does not stop the run (unless ``stop_on_failure``);
- reports progress through `dfl_vfx.progress.progress_bar` (a bar only on a terminal, log lines elsewhere);
- on KeyboardInterrupt (SIGTERM too: while frames run in the main thread, SIGTERM with its default action is taken
  as Ctrl-C) or any other exception, submits nothing more, lets the frames in flight finish whole and records them,
  marks the run ``interrupted`` (with the error when it was not a signal) and re-raises;
- keeps the caller's summary file up to date: written atomically when the loop starts, after every finished frame,
  and at the end, so even a native crash leaves the frames done so far (status ``running`` and a dead pid).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dfl_vfx.errors import DflError
from dfl_vfx.io.atomic import write_text_atomic
from dfl_vfx.io.sequence import FrameSequence
from dfl_vfx.progress import progress_bar

RUNNING, INTERRUPTED, COMPLETE = "running", "interrupted", "complete"

T = TypeVar("T")


@dataclass
class FrameRun:
    """What a run over frames has done so far; every shot summary is built around one."""

    total: int = 0  # frames asked for, missing ones included
    status: str = RUNNING  # running (or the process died), interrupted (a signal or an error), complete
    error: str = ""  # what stopped an interrupted run, when it was not a signal
    done: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # already done before this run
    missing: dict[int, str] = field(default_factory=dict)  # frame -> why its input is not there
    failed: dict[int, str] = field(default_factory=dict)  # frame -> one-line reason
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.time)  # when the frame loop began, seconds since the epoch
    frames_s: float = 0.0  # wall time of the frame loop so far

    @property
    def left(self) -> int:
        """Frames neither done, skipped, failed nor missing (what an interrupted run leaves to a rerun)."""
        return self.total - len(self.done) - len(self.skipped) - len(self.failed) - len(self.missing)

    @property
    def fps(self) -> float:
        """Frames done per second of the frame loop."""
        return len(self.done) / self.frames_s if self.frames_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "host": self.host, "pid": self.pid, "error": self.error or None,
            "total": self.total, "done": sorted(self.done), "skipped": sorted(self.skipped),
            "missing": {str(f): r for f, r in sorted(self.missing.items())},
            "failed": {str(f): r for f, r in sorted(self.failed.items())},
            "started_at": round(self.started_at, 3), "frames_s": round(self.frames_s, 4),
        }


@dataclass
class SummaryFile:
    """A summary file the runner rewrites atomically as frames finish; ``render`` gives its whole text."""

    path: Path
    render: Callable[[], str]

    def write(self) -> None:
        write_text_atomic(self.path, self.render())


def missing_frames(sequence: FrameSequence) -> dict[int, str]:
    """The frames of ``sequence`` with no file, and the reason a summary gives for each."""
    return {frame: f"file missing: {sequence.path(frame)}" for frame in sequence.missing()}


class InlineExecutor(Executor):
    """Runs each job as it is submitted, in the caller's thread: an exception lands in the future as a pool's
    would, while an interrupt (KeyboardInterrupt, SystemExit) propagates at once."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises KeyboardInterrupt in the main thread (only where SIGTERM would kill us)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield  # a handler is set already (the CLI's), or signals cannot be handled in this thread
        return
    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (the type alone for an exception without a message)."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class _Recorder:
    """Enters finished frames into the run."""

    def __init__(self, run: FrameRun, on_result: Callable[[int, Any], str | None] | None,
                 failures: tuple[type[BaseException], ...], stop_on_failure: bool) -> None:
        self.run = run
        self.on_result = on_result
        self.failures = failures
        self.stop_on_failure = stop_on_failure

    def record(self, frame: int, future: Future) -> None:
        """Done or failed; an exception the run cannot go on after (a bug, or any failure with
        ``stop_on_failure``) is raised."""
        exc = future.exception()
        if exc is not None:
            if self.stop_on_failure or not isinstance(exc, self.failures):
                raise exc
            self.run.failed[frame] = (str(exc).splitlines() or [type(exc).__name__])[0]
            return
        reason = self.on_result(frame, future.result()) if self.on_result is not None else None
        if reason:
            self.run.failed[frame] = reason
        else:
            self.run.done.append(frame)

    def record_quietly(self, frame: int, future: Future) -> None:
        """After an interrupt: a frame that finished is entered, one that broke is left to the rerun."""
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None or (isinstance(exc, self.failures) and not self.stop_on_failure):
            self.record(frame, future)


def run_frames(
    frames: Iterable[int],
    job: Callable[..., T],
    *,
    arguments: Callable[[int], tuple] | None = None,
    run: FrameRun | None = None,
    missing: Mapping[int, str] | None = None,
    already_done: Callable[[int], bool] | None = None,
    on_result: Callable[[int, T], str | None] | None = None,
    executor: Executor | None = None,
    threads: int = 0,
    in_flight: int | None = None,
    summary: SummaryFile | None = None,
    progress: bool | None = None,
    desc: str = "",
    unit: str = "frame",
    failures: tuple[type[BaseException], ...] = (DflError,),
    stop_on_failure: bool = False,
) -> FrameRun:
    """Run ``job(*arguments(frame))`` (default ``job(frame)``) for each frame; see the module's docstring.

    ``run``: the record to fill (a new one by default; its ``total`` becomes the number of ``frames``).
    ``missing``: frame -> reason for frames whose input is not there (not run). ``already_done``: frames for which
    it says True are skipped. ``on_result(frame, result)``: takes a finished frame's result; a reason it returns
    marks the frame failed. ``executor``: where jobs run (the caller's, left open); else ``threads`` > 0 makes a
    thread pool for this run, and 0 runs them in this thread. ``in_flight``: frames submitted at once (default
    twice the threads, 1 in this thread; give it with an ``executor``). ``failures``: exception types recorded
    as a frame's failure; any other exception stops the run.
    """
    run = run if run is not None else FrameRun()
    frames = list(frames)
    run.total = len(frames)
    missing = missing or {}
    todo = []
    for frame in frames:
        if frame in missing:
            run.missing[frame] = missing[frame]
        elif already_done is not None and already_done(frame):
            run.skipped.append(frame)
        else:
            todo.append(frame)
    own_pool = None
    if executor is None and threads > 0:
        own_pool = ThreadPoolExecutor(threads, thread_name_prefix=desc or "frames")
    pool = executor or own_pool or InlineExecutor()
    limit = in_flight or (2 * threads if own_pool else 1)
    recorder = _Recorder(run, on_result, failures, stop_on_failure)
    bar = progress_bar(total=len(todo), desc=desc, unit=unit, enabled=progress)
    pending: dict[Future, int] = {}
    queue = deque(todo)
    run.started_at = time.time()
    start = time.perf_counter()

    def save() -> None:
        run.frames_s = time.perf_counter() - start
        if summary is not None:
            summary.write()

    try:
        save()
        with sigterm_as_interrupt():
            while queue or pending:
                while queue and len(pending) < limit:
                    frame = queue.popleft()
                    pending[pool.submit(job, *(arguments(frame) if arguments else (frame,)))] = frame
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=pending.__getitem__):
                    recorder.record(pending.pop(future), future)
                    bar.update(1)
                save()  # after every finished frame: a crash in native code still leaves the summary so far
        run.status = COMPLETE
    except BaseException as exc:
        run.status = INTERRUPTED
        if not isinstance(exc, KeyboardInterrupt):
            run.error = _first_line(exc)
        raise
    finally:  # interrupted too: frames already running finish (their outputs are atomic) and are counted
        for future in pending:
            future.cancel()
        wait(pending)
        for future, frame in sorted(pending.items(), key=lambda item: item[1]):
            recorder.record_quietly(frame, future)
        if own_pool is not None:
            own_pool.shutdown(wait=True)
        bar.close()
        run.done.sort()
        run.skipped.sort()
        save()
    return run
