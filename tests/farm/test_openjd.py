"""The Open Job Description template, checked by the real `openjd check`, and the whole demo pipeline run by the
real `openjd run` (extract -> time-boxed training chain -> export -> swap in chunks -> comp) with a tiny model; and a
training step on two nodes run as a farm runs it: two `openjd run` sessions at once, one per NodeRank."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dfl_vfx.farm import openjd
from dfl_vfx.farm.job import build_job
from dfl_vfx.farm.shot import load_shot
from dfl_vfx.io.sequence import open_sequence
from trainer.distributed import MASTER_FILE
from trainer.loop import load_checkpoint

OPENJD = str(Path(sys.executable).parent / "openjd")


def _template(write_shot: Callable[..., Path], tmp_path: Path, overrides: dict | None = None) -> Path:
    job = build_job(load_shot(write_shot(), overrides))
    (template,) = openjd.write(job, tmp_path / "openjd")
    return template


def test_template_passes_openjd_check(write_shot: Callable[..., Path], tmp_path: Path) -> None:
    template = _template(write_shot, tmp_path, {"farm.gpus": 2, "farm.gpu_memory_gb": 16})
    done = subprocess.run([OPENJD, "check", str(template)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = {step["name"]: step for step in json.loads(template.read_text())["steps"]}
    assert steps["Train01"]["hostRequirements"] == {"amounts": [{"name": "amount.worker.gpu", "min": 2},
                                                                {"name": "amount.worker.gpu.memory", "min": 16384}]}
    assert steps["Swap"]["parameterSpace"]["taskParameterDefinitions"] == [
        {"name": "Frames", "type": "STRING", "range": ["1001-1002", "1003-1004"]}]
    assert "--frames={{Task.Param.Frames}}" in steps["Swap"]["script"]["actions"]["onRun"]["args"]
    assert steps["Export"]["dependencies"] == [{"dependsOn": "Train02"}]
    assert "hostRequirements" not in steps["ExtractPlate"]
    assert steps["Train02"]["script"]["actions"]["onRun"]["timeout"] == 600 + 1800  # 10m task, 30m to spare


def test_a_broken_template_fails_openjd_check(write_shot: Callable[..., Path], tmp_path: Path) -> None:
    """The check above can fail: a dependency on a step that does not exist is refused by `openjd check`."""
    template = _template(write_shot, tmp_path)
    document = json.loads(template.read_text())
    document["steps"][-1]["dependencies"] = [{"dependsOn": "Nowhere"}]
    template.write_text(json.dumps(document))
    done = subprocess.run([OPENJD, "check", str(template)], capture_output=True, text=True, check=False)
    assert done.returncode != 0


FAKE_BLENDER = """#!/bin/sh
# a Blender stand-in: records the render it was asked for and the swapped frames it found
echo "$* | $(ls "$SWAP" | grep '[.]exr$' | tr '\\n' ' ')" >> "$LOG"
"""


def test_openjd_run_of_the_whole_pipeline(write_shot: Callable[..., Path], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    blender = tmp_path / "blender"
    blender.write_text(FAKE_BLENDER)
    blender.chmod(0o755)
    (tmp_path / "comp.blend").write_bytes(b"BLENDER")
    monkeypatch.setenv("LOG", str(tmp_path / "comp.log"))
    monkeypatch.setenv("SWAP", str(tmp_path / "swap"))
    shot = load_shot(write_shot(extra=f'\n[comp]\nblender = "comp.blend"\nexe = "{blender}"\n'))
    job = build_job(shot)
    (template,) = openjd.write(job, tmp_path / "openjd")
    done = subprocess.run(openjd.run_command(template, job, OPENJD), capture_output=True, text=True, check=False,
                          timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert "stopped (max_iters) at iteration 3" in log  # the first training task reached the target...
    assert re.search(r"resumed \S+checkpoint\.pt at iteration 3", log)  # ...the second resumed it and exited
    assert shot.onnx.is_file() and (shot.model_dir / "checkpoint.pt").is_file()
    swapped = sorted(path.name for path in shot.output.iterdir() if path.suffix == ".exr")
    assert swapped == [f"plate.{frame}.exr" for frame in range(1001, 1005)]
    assert len(open_sequence(str(shot.output / "plate.####.exr")).missing()) == 0
    blend = tmp_path / "comp.blend"
    swapped_text = " ".join(swapped) + " "
    assert (tmp_path / "comp.log").read_text().splitlines() == [  # each chunk rendered after the whole swap
        f"-b {blend} -s 1001 -e 1002 -a | {swapped_text}", f"-b {blend} -s 1003 -e 1004 -a | {swapped_text}"]


def test_two_openjd_sessions_train_as_two_nodes(small_shot: Path, facesets: tuple[Path, Path], tiny_model: dict,
                                                tmp_path: Path) -> None:
    """The template's multi-node step (NodeRank 0 and 1), each task in its own `openjd run` as two farm workers
    would run them: the nodes meet through the work folder, train in DDP (gloo) with equal parameters, rank 0
    saves, and the address file is gone afterwards."""
    src, dst = facesets
    options = "\n".join(f"{key} = {json.dumps(value)}" for key, value in tiny_model.items())
    path = tmp_path / "shot.toml"
    path.write_text(f"""
[shot]
plate = "{small_shot}/plate/plate.####.exr"
frames = "1001-1004"
output = "{tmp_path}/swap"
work_dir = "{tmp_path}/work"
faces = "{dst}"
[source]
faceset = "{src}"
[model.options]
{options}
[farm]
gpus = 0
nodes = 2
train_tasks = 1
train_task_time = "10m"
iterations = 2
""")
    shot = load_shot(path)
    (template,) = openjd.write(build_job(shot), tmp_path / "openjd")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DFL_VFX_RDZV_HOST": "127.0.0.1"}
    nodes = [subprocess.Popen([OPENJD, "run", str(template), "--step", "Train01", "-tp", f"NodeRank={rank}"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for rank in (1, 0)]  # rank 1 first: it waits for rank 0
    logs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(log[-3000:] for log in logs)
    assert "DDP: 2 ranks, max parameter difference 0" in (shot.model_dir / "train.log").read_text()
    checkpoint = load_checkpoint(shot.model_dir)
    assert checkpoint["iteration"] == 2 and sorted(checkpoint["rng"]) == ["0", "1"]
    assert not (shot.work_dir / "rendezvous" / "Train01" / MASTER_FILE).exists()
