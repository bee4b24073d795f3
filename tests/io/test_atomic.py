"""Atomic writes and the clean-up of temporary files that killed writers left behind."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dfl_vfx.io import atomic
from dfl_vfx.io.atomic import atomic_path, is_stale_temp, remove_stale_temps, write_text_atomic


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_name_carries_host_and_pid_and_keeps_suffix(tmp_path: Path) -> None:
    target = tmp_path / "plate.1001.exr"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".plate.1001.~")
        assert f"~{os.getpid()}~" in tmp.name
        assert tmp.suffix == ".exr"
        assert not is_stale_temp(tmp)  # our own, alive
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x"
    assert list(tmp_path.iterdir()) == [target]


def test_failed_write_leaves_no_temp_and_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_permissions_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "a")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_rerun_removes_only_temps_of_dead_writers(tmp_path: Path) -> None:
    host = atomic._host()
    dead = tmp_path / f".plate.1001.~{host}~{_dead_pid()}~abcd1234.tmp.exr"
    alive = tmp_path / f".plate.1002.~{host}~{os.getppid()}~abcd1234.tmp.exr"  # pytest's parent is alive
    other_host_fresh = tmp_path / ".plate.1003.~render-node-17~12345~abcd1234.tmp.exr"
    other_host_old = tmp_path / ".plate.1004.~render-node-17~12345~abcd1234.tmp.exr"
    legacy_old = tmp_path / ".checkpoint.k2j4h5g6.tmp.pt"
    legacy_fresh = tmp_path / ".checkpoint.a1b2c3d4.tmp.pt"
    user_files = [tmp_path / "plate.1001.exr", tmp_path / ".hidden.tmp", tmp_path / "notes.tmp.txt"]
    for path in [dead, alive, other_host_fresh, other_host_old, legacy_old, legacy_fresh, *user_files]:
        path.write_bytes(b"x")
    day_ago = time.time() - 2 * 24 * 3600
    for path in (other_host_old, legacy_old):
        os.utime(path, (day_ago, day_ago))
    nested = tmp_path / "snapshots"
    nested.mkdir()
    nested_dead = nested / f".checkpoint.~{host}~{_dead_pid()}~00ff00ff.tmp.pt"
    nested_dead.write_bytes(b"x")

    removed = remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted([dead, other_host_old, legacy_old])
    assert nested_dead.exists()
    assert remove_stale_temps(tmp_path, recursive=True) == [nested_dead]
    for path in [alive, other_host_fresh, legacy_fresh, *user_files]:
        assert path.exists(), path


def test_missing_folder_removes_nothing(tmp_path: Path) -> None:
    assert remove_stale_temps(tmp_path / "nope") == []
