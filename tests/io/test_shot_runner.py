"""The shared frame loop (dfl_vfx.io.shot_runner): skip and resume, missing and failing frames, the summary as frames
finish, interrupts that let frames in flight finish whole (SIGTERM included), progress lines off a terminal."""

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.io.shot_runner import COMPLETE, INTERRUPTED, FrameRun, SummaryFile, run_frames


def _summary(run: FrameRun, path: Path) -> SummaryFile:
    return SummaryFile(path, lambda: json.dumps(run.to_dict()))


@pytest.mark.parametrize("threads", [0, 3])
def test_missing_skipped_done_and_failed_frames(tmp_path: Path, threads: int) -> None:
    results: dict[int, int] = {}

    def job(frame: int) -> int:
        if frame == 1005:
            raise DflError("plate.1005.exr: truncated; re-render it")
        return frame * 2

    def take(frame: int, value: int) -> str | None:
        results[frame] = value
        return "no face" if frame == 1006 else None

    run = FrameRun()
    path = tmp_path / "summary.json"
    returned = run_frames(range(1001, 1009), job, run=run, missing={1002: "file missing: plate.1002.exr"},
                          already_done=lambda frame: frame == 1003, on_result=take, threads=threads,
                          summary=_summary(run, path), progress=False)
    assert returned is run and run.status == COMPLETE and run.error == ""
    assert run.done == [1001, 1004, 1007, 1008] and run.skipped == [1003]
    assert run.failed == {1005: "plate.1005.exr: truncated; re-render it", 1006: "no face"}
    assert run.missing == {1002: "file missing: plate.1002.exr"} and run.total == 8 and run.left == 0
    assert results == {f: 2 * f for f in (1001, 1004, 1006, 1007, 1008)}
    saved = json.loads(path.read_text())
    assert saved["status"] == "complete" and saved["done"] == [1001, 1004, 1007, 1008]
    assert saved["failed"] == {"1005": "plate.1005.exr: truncated; re-render it", "1006": "no face"}
    assert saved["missing"] == {"1002": "file missing: plate.1002.exr"} and saved["skipped"] == [1003]
    assert saved["pid"] > 0 and saved["host"] and saved["frames_s"] >= 0
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # written atomically, no temporary left


def test_the_summary_is_on_disk_after_every_frame(tmp_path: Path) -> None:
    run = FrameRun()
    path = tmp_path / "summary.json"
    seen: dict[int, tuple[str, list[int]]] = {}

    def job(frame: int) -> None:
        saved = json.loads(path.read_text())
        seen[frame] = (saved["status"], saved["done"])

    run_frames([1, 2, 3], job, run=run, summary=_summary(run, path), progress=False)
    assert seen == {1: ("running", []), 2: ("running", [1]), 3: ("running", [1, 2])}
    assert json.loads(path.read_text())["status"] == "complete"


def test_an_unexpected_error_stops_the_run_and_frames_in_flight_finish(tmp_path: Path) -> None:
    run = FrameRun()
    started: list[int] = []
    finished: list[int] = []
    lock = threading.Lock()

    def job(frame: int) -> int:
        with lock:
            started.append(frame)
        if frame == 3:
            time.sleep(0.2)  # frame 2 is still running when it fails
            raise ZeroDivisionError("division by zero")
        time.sleep(0.4 if frame == 2 else 0.0)
        with lock:
            finished.append(frame)
        return frame

    with pytest.raises(ZeroDivisionError):
        run_frames(range(1, 21), job, run=run, threads=2, in_flight=4, summary=_summary(run, tmp_path / "s.json"),
                   progress=False)
    assert run.status == INTERRUPTED and run.error == "ZeroDivisionError: division by zero"
    assert sorted(finished) == run.done  # every frame that finished is counted, none half-way
    assert {1, 2} <= set(run.done) and len(started) < 8  # frames not yet started when it failed never were
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["status"] == "interrupted" and saved["done"] == run.done and saved["error"] == run.error


def test_ctrl_c_in_this_thread_is_an_interrupt_without_an_error(tmp_path: Path) -> None:
    run = FrameRun()

    def job(frame: int) -> int:
        if frame == 3:
            raise KeyboardInterrupt
        return frame

    with pytest.raises(KeyboardInterrupt):
        run_frames([1, 2, 3, 4], job, run=run, summary=_summary(run, tmp_path / "s.json"), progress=False)
    assert (run.status, run.error, run.done, run.left) == (INTERRUPTED, "", [1, 2], 2)
    assert json.loads((tmp_path / "s.json").read_text())["status"] == "interrupted"


def test_stop_on_failure_raises_the_frames_own_error() -> None:
    calls: list[int] = []

    def job(frame: int) -> None:
        calls.append(frame)
        if frame == 2:
            raise DflError("--plate p: frame 2 is missing")

    with pytest.raises(DflError, match="^--plate p: frame 2 is missing$"):
        run_frames([1, 2, 3], job, stop_on_failure=True, progress=False)
    assert calls == [1, 2]


def test_progress_off_a_terminal_is_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dfl_vfx.progress")
    run_frames(range(5), lambda frame: frame, already_done=lambda frame: frame == 0, desc="align")
    lines = [r.getMessage() for r in caplog.records if r.name == "dfl_vfx.progress"]
    assert lines and lines[-1].startswith("align: 4/4 frames (100%)"), lines
    caplog.clear()
    run_frames(range(5), lambda frame: frame, desc="align", progress=False)
    assert not [r for r in caplog.records if r.name == "dfl_vfx.progress"]


# A run in its own process, sent SIGTERM (as a farm pre-empting a task does) by frame 3 as it starts.
SIGTERMED_RUN = """
import json, os, signal, sys, time
from pathlib import Path
from dfl_vfx.io.shot_runner import FrameRun, SummaryFile, run_frames

out = Path(sys.argv[1])
run = FrameRun()

def job(frame):
    if frame == 3:
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.3)
    (out / f"frame.{frame}").write_text("whole")
    return frame

try:
    run_frames(range(1, 11), job, run=run, threads=2, summary=SummaryFile(out / "summary.json",
               lambda: json.dumps(run.to_dict())), progress=False)
except KeyboardInterrupt:
    print("interrupted")
print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
"""


def test_sigterm_lets_frames_in_flight_finish_and_marks_the_run_interrupted(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SIGTERMED_RUN, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["interrupted", "True"]  # and SIGTERM's default action is back afterwards
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["status"] == "interrupted" and saved["error"] is None
    written = sorted(int(p.suffix[1:]) for p in tmp_path.glob("frame.*"))
    assert saved["done"] == written and 3 in written  # frame 3 was running: it finished whole and is counted
    assert len(written) < 10 and saved["total"] == 10  # frames not yet started were not
