"""Training runs as a user drives them: resume with the folders only, extract's default face type, a model folder
that cannot be written, a full disk at save time, temporaries of killed runs, progress in a redirected log."""

import errno
import io
import json
import logging
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dfl_vfx.cli.main import main
from dfl_vfx.errors import DflError
from dfl_vfx.faceset import Faceset
from dfl_vfx.io.atomic import temp_name
from dfl_vfx.models.checkpoint import load_checkpoint, save_checkpoint
from trainer.config import load_config
from trainer.loop import Trainer, train


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """`main()` points the root logger at pytest's captured stderr, which closes after the test: put it back."""
    handlers, level = logging.root.handlers[:], logging.root.level
    yield
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


NETWORK = {"archi": "df-ud", "resolution": 64, "ae_dims": 32, "e_dims": 16, "d_dims": 16, "d_mask_dims": 16}


def _cli(capsys: pytest.CaptureFixture, facesets: tuple[Path, Path], model_dir: Path, *extra: str
         ) -> tuple[int, str, str]:
    src, dst = facesets
    code = main(["train", "--src", str(src), "--dst", str(dst), "--model-dir", str(model_dir), "--batch-size", "2",
                 "--no-progress", "--preview-every", "0", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def _cfg(facesets: tuple[Path, Path], model_dir: Path, **options):
    src, dst = facesets
    return load_config(None, {"src": str(src), "dst": str(dst), "model_dir": str(model_dir), "batch_size": 2,
                              "preview_every": 0, "log_every": 1, **options})


def test_resume_needs_only_the_folders_and_refuses_a_contradicting_flag(
        wf_facesets, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model_dir = tmp_path / "m"
    network = [f"--set=model.{k}={v}" for k, v in NETWORK.items()]
    code, _, err = _cli(capsys, wf_facesets, model_dir, "--max-iters", "2", "--face-type", "wf", *network)
    assert code == 0, err
    code, out, err = _cli(capsys, wf_facesets, model_dir, "--max-iters", "3")  # the model's own options
    assert code == 0, err
    assert "stopped (max_iters) at iteration 3" in out
    state = load_checkpoint(model_dir)
    assert state["iteration"] == 3 and len(state["history"]["src"]) == 3
    assert state["config"]["model"] == {**NETWORK, "face_type": "wf"}
    assert f"resumed {model_dir / 'checkpoint.pt'} at iteration 2" in (model_dir / "train.log").read_text()
    before = (model_dir / "checkpoint.pt").read_bytes()
    code, _, err = _cli(capsys, wf_facesets, model_dir, "--max-iters", "4", "--face-type", "f")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (f"--face-type asks for face_type f (full_face), but the model in {model_dir} has face_type wf "
            "(whole_face) (its checkpoint); drop --face-type to resume") in err
    assert (model_dir / "checkpoint.pt").read_bytes() == before


def test_a_new_model_takes_extracts_default_face_type(wf_facesets, tmp_path: Path) -> None:
    result = train(_cfg(wf_facesets, tmp_path / "m", max_iters=1, model=dict(NETWORK)), progress=False)
    assert result.iteration == 1
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model"]["face_type"] == "wf"
    assert load_checkpoint(tmp_path / "m")["config"]["model"]["face_type"] == "wf"


def test_facesets_of_different_face_types_are_refused_before_any_work(wf_facesets, facesets, tmp_path: Path) -> None:
    src, _ = wf_facesets
    _, dst = facesets  # full face
    with pytest.raises(DflError, match=r"the src faceset .* holds whole_face faces but the dst faceset .* holds "
                                       r"full_face faces; extract both with the same --face-type"):
        train(_cfg((src, dst), tmp_path / "m", max_iters=1, model=dict(NETWORK)), progress=False)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_a_model_dir_that_is_a_file_is_one_line(where: str, facesets, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "taken").write_text("not a folder")
    model_dir = tmp_path / "taken" if where == "file" else tmp_path / "taken" / "m"
    code, _, err = _cli(capsys, facesets, model_dir, "--max-iters", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "--model-dir" in err and "is a file" in err
    assert (tmp_path / "taken").read_text() == "not a folder"


def test_a_model_dir_on_a_filesystem_that_refuses_files_is_one_line(facesets, capsys: pytest.CaptureFixture
                                                                     ) -> None:
    code, _, err = _cli(capsys, facesets, Path("/sys/dfl-vfx-model"), "--max-iters", "1")  # sysfs: even for root
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "--model-dir /sys/dfl-vfx-model: cannot write in /sys" in err


def test_an_unwritable_model_dir_is_one_line(facesets, read_only_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = _cli(capsys, facesets, read_only_dir / "m", "--max-iters", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"--model-dir {read_only_dir / 'm'}: cannot write in {read_only_dir} (Permission denied)" in err
    assert list(read_only_dir.iterdir()) == []


def _temporaries(model_dir: Path) -> list[str]:
    return sorted(p.name for p in model_dir.rglob(".*") if ".tmp" in p.name)


def test_a_full_disk_at_save_keeps_the_previous_checkpoint(facesets, tmp_path: Path, tiny_model: dict,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = tmp_path / "m"
    train(_cfg(facesets, model_dir, max_iters=1, model=tiny_model), progress=False)
    before = (model_dir / "checkpoint.pt").read_bytes()
    trainer = Trainer(_cfg(facesets, model_dir, max_iters=2, model=tiny_model), progress=False)
    trainer.step()
    # a real failed write: the kernel refuses to grow a file past RLIMIT_FSIZE (Python ignores SIGXFSZ), which
    # torch's zip writer meets exactly as it meets ENOSPC
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        with pytest.raises(DflError) as caught:
            trainer.save()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"cannot write the checkpoint in {model_dir} (")
    assert re.search(r" \((the write failed: disk full\?|File too large), \d+ MB free there\); ", message), message
    assert "the previous checkpoint there is intact" in message and "free space and rerun" in message
    assert (model_dir / "checkpoint.pt").read_bytes() == before
    assert _temporaries(model_dir) == []

    def disk_full(obj: object, path: object) -> None:
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(DflError, match=r"\(No space left on device, \d+ MB free there\); the previous checkpoint"):
        trainer.save()
    with pytest.raises(DflError, match=r"; no checkpoint was saved yet: free space and rerun the same command$"):
        save_checkpoint(tmp_path / "new", {"iteration": 0})
    assert (model_dir / "checkpoint.pt").read_bytes() == before
    assert _temporaries(model_dir) == [] and _temporaries(tmp_path / "new") == []


def test_a_preview_that_cannot_be_written_does_not_fail_the_run(facesets, tmp_path: Path, tiny_model: dict,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    def disk_full(path: object, *args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("trainer.loop.write_preview", disk_full)
    result = train(_cfg(facesets, tmp_path / "m", max_iters=1, model=tiny_model), progress=False)
    assert result.iteration == 1 and load_checkpoint(tmp_path / "m")["iteration"] == 1
    assert "preview not written in" in caplog.text and "No space left on device" in caplog.text


def test_temporaries_of_killed_runs_are_removed_and_live_ones_kept(facesets, tmp_path: Path,
                                                                   tiny_model: dict) -> None:
    model_dir = tmp_path / "m"
    (model_dir / "snapshots").mkdir(parents=True)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead_pid = int(finished.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        def temporary(target: Path, pid: int) -> Path:
            path = temp_name(target)
            path = path.with_name(path.name.replace(f"~{os.getpid()}~", f"~{pid}~"))
            path.write_bytes(b"half a checkpoint")
            return path

        stale = [temporary(model_dir / "checkpoint.pt", dead_pid),
                 temporary(model_dir / "snapshots" / "checkpoint_00000002_20250101-000000.pt", dead_pid)]
        writing = temporary(model_dir / "checkpoint.pt", live.pid)  # another process still at work
        result = train(_cfg(facesets, model_dir, max_iters=1, model=tiny_model), progress=False)
    finally:
        live.kill()
        live.wait()
    assert result.iteration == 1
    assert not any(path.exists() for path in stale)
    assert writing.read_bytes() == b"half a checkpoint"


def test_progress_is_log_lines_in_a_redirected_log_and_a_bar_on_a_terminal(
        facesets, tmp_path: Path, tiny_model: dict, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with caplog.at_level(logging.INFO):
        train(_cfg(facesets, tmp_path / "log", max_iters=2, model=tiny_model), progress=None)
    reports = [r.getMessage() for r in caplog.records if r.name == "dfl_vfx.progress"]
    faces = len(Faceset.open(facesets[0]).records())
    assert any(line.startswith(f"load src: {faces}/{faces} faces (100%)") for line in reports), reports
    assert not any(line.startswith("train") for line in reports)  # the loop's own lines report training
    assert "iteration 2 src" in caplog.text

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    train(_cfg(facesets, tmp_path / "tty", max_iters=2, model=tiny_model), progress=None)
    drawn = terminal.getvalue()
    assert "\r" in drawn and "train: 100%" in drawn and "2/2" in drawn
