"""`dfl-vfx extract` from the command line: output checks, leftovers of killed runs, progress in logs, workers."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.cli.main import main
from dfl_vfx.io.image import Image, write_image

EXE = str(Path(sys.executable).parent / "dfl-vfx")
PLATE = "plate/plate.####.exr"


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dfl-vfx extract: error: "), err
    return lines[0]


def test_a_plate_without_colour_says_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for frame in (1, 2):
        depth = Image.from_array(np.ones((8, 8), np.float32), channels=["depth.Z"], fmt="float")
        write_image(tmp_path / f"zonly.{frame:04d}.exr", depth)
    code, out, err = run(capsys, "extract", str(tmp_path / "zonly.####.exr"), "--out", str(tmp_path / "faces"),
                         "--jobs", "1", "--no-progress")
    line = one_error_line(err)
    assert code == 2
    assert "none of the 2 frame(s) could be used" in line and "no R, G, B channels (has depth.Z)" in line
    assert "--detect-size" not in line and "--min-face" not in line  # neither would help
    assert "skipped frame 1: " in out


def test_no_face_found_suggests_a_smaller_min_face(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_image(tmp_path / "grey.0001.png", Image.from_array(np.full((64, 64, 3), 0.4, np.float32), fmt="uint8"))
    code, out, err = run(capsys, "extract", str(tmp_path / "grey.####.png"), "--out", str(tmp_path / "faces"),
                         "--jobs", "1", "--no-progress")
    assert code == 2 and "no face found in 1 frame(s)" in one_error_line(err) and "--min-face" in err
    assert "detection: faces from 40 px, searched on a 64x64 copy of 64x64 (--min-face auto, --detect-size auto)" \
        in out


@pytest.mark.parametrize("where", ["file", "under_file", "unwritable"])
def test_out_that_cannot_be_a_folder_fails_before_any_work(where: str, small_shot: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "faces.txt"
    blocker.write_text("not a folder")
    if where == "file":
        out = blocker
    elif where == "under_file":
        out = blocker / "faces"
    elif os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out = locked / "faces"
    else:  # root writes anywhere a permission bit forbids; sysfs refuses even root
        out = Path("/sys/dfl-vfx-test/faces")
    code, _, err = run(capsys, "extract", str(small_shot / PLATE), "--out", str(out), "--jobs", "1")
    line = one_error_line(err)
    assert code == 2 and f"--out {out}" in line and "Traceback" not in err
    assert blocker.read_text() == "not a folder"


def test_leftovers_of_a_killed_run_are_removed_and_live_writers_kept(small_shot: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    out, debug = tmp_path / "faces", tmp_path / "debug"
    out.mkdir()
    debug.mkdir()
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    stale = [out / f".plate.1001_0.~{host}~{dead.pid}~0badc0de.tmp.exr",
             debug / f".plate.1001.~{host}~{dead.pid}~1.tmp.jpg"]
    live = out / f".plate.1002_0.~{host}~{os.getpid()}~0badc0de.tmp.exr"  # a writer still at work (this test)
    for path in (*stale, live):
        path.write_bytes(b"partial")
    code, _, _ = run(capsys, "extract", str(small_shot / PLATE), "--out", str(out), "--frames", "1001",
                     "--size", "64", "--jobs", "1", "--no-progress", "--debug", str(debug))
    assert code == 0
    assert not any(p.exists() for p in stale) and live.read_bytes() == b"partial"


def test_progress_in_a_log_is_lines_not_bars(small_shot: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [EXE, "extract", str(small_shot / PLATE), "--out", str(tmp_path / "faces"), "--frames", "1001-1004",
         "--size", "64", "--jobs", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    lines = result.stderr.splitlines()
    assert "detect: 4/4 frames (100%)" in "\n".join(lines) and any(line.startswith("align: ") for line in lines)


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc, no psutil)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for a parent that does not reap."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds worker processes through /proc")
def test_killing_extract_leaves_no_worker_processes(small_shot: Path, tmp_path: Path) -> None:
    plate = tmp_path / "plate"
    plate.mkdir()
    for k in range(120):  # a long plate: the 12 demo frames over and over
        (plate / f"plate.{1001 + k:04d}.exr").symlink_to(small_shot / "plate" / f"plate.{1001 + k % 12:04d}.exr")
    log = tmp_path / "extract.log"
    workers: list[int] = []
    with log.open("w") as stderr:
        parent = subprocess.Popen([EXE, "extract", str(plate / "plate.####.exr"), "--out", str(tmp_path / "faces"),
                                   "--size", "64", "--jobs", "2"], stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 120
        while "detect: " not in log.read_text():  # the workers are busy detecting
            assert parent.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        workers = _children(parent.pid)
        assert len(workers) >= 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if _running(pid)]
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in workers:  # only when the test failed: leave nothing running either way
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_help_teaches_small_faces(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    text = capsys.readouterr().out
    for needle in ("--min-face PX|auto", "--detect-size PX|auto", "small faces:", "a tenth of the frame's shorter",
                   "--select largest"):
        assert needle in text


def test_min_face_and_detect_size_from_the_command_line(small_shot: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    args = ["extract", str(small_shot / PLATE), "--frames", "1001-1002", "--size", "64", "--jobs", "1",
            "--no-progress"]
    code, out, err = run(capsys, *args, "--out", str(tmp_path / "a"), "--min-face", "300")
    assert code == 2 and "no face found in 2 frame(s)" in err  # the ~95 px face is under 300
    assert "detection: faces from 300 px, searched on a 640x380 copy of 688x408 (--min-face 300, --detect-size auto)" \
        in out
    code, out, _ = run(capsys, *args, "--out", str(tmp_path / "b"), "--detect-size", "320", "--min-face", "auto")
    assert code == 0 and "extracted 2 face(s)" in out
    assert "searched on a 320x190 copy of 688x408 (--min-face auto, --detect-size 320)" in out
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out", str(tmp_path / "c"), "--min-face", "0"])
    assert exit_info.value.code == 2 and "expected a positive number of pixels or auto, got '0'" in \
        capsys.readouterr().err
