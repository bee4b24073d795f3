"""The job model and the file-writing engines: steps, chunks, dependencies, GPU requirements, Deadline files."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from dfl_vfx.cli.main import main
from dfl_vfx.errors import DflError
from dfl_vfx.faceset.alignments import Alignments, FrameFaces, write_alignments
from dfl_vfx.farm import deadline10, deadline_cloud
from dfl_vfx.farm.engines import ENGINES, engine
from dfl_vfx.farm.job import FRAMES, build_job
from dfl_vfx.farm.shot import load_shot


@pytest.fixture()
def exe(tmp_path: Path) -> str:
    """A stand-in engine executable (the path the farm's workers would run)."""
    path = tmp_path / "bin" / "dfl-vfx"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def test_steps_dependencies_and_chunks(write_shot: Callable[..., Path], exe: str) -> None:
    job = build_job(load_shot(write_shot(frames="1001-1005")), exe)
    assert [step.name for step in job.steps] == ["ExtractPlate", "ExtractSource", "Train01", "Train02", "Export",
                                                 "Swap"]
    assert job.step("Train01").depends_on == ("ExtractPlate", "ExtractSource")
    assert job.step("Train02").depends_on == ("Train01",)
    assert job.step("Export").depends_on == ("Train02",)
    swap = job.step("Swap")
    assert swap.chunks == ("1001-1002", "1003-1004", "1005-1005")
    assert swap.command[:2] == [exe, "swap"] and f"--model={job.step('Export').command[3][6:]}" in swap.command
    assert [arg for arg in swap.task_commands()[2] if arg.startswith("--frames")] == ["--frames=1005-1005"]
    assert "--erode=5" in swap.command and "--blur=10" in swap.command


def test_train_tasks_are_time_boxed_and_resume_to_the_target(write_shot: Callable[..., Path], exe: str) -> None:
    job = build_job(load_shot(write_shot(), {"farm.gpus": 2, "farm.gpu_memory_gb": 24}), exe)
    train = job.step("Train01")
    assert train.command[:2] == [exe, "train"]
    assert {"--max-iters=3", "--max-time=10m", "--gpus=2", "--set=model.ae_dims=32"} <= set(train.command)
    assert job.step("Train02").command == train.command  # the same command: each task resumes the model
    assert (train.gpus, train.gpu_memory_gb) == (2, 24)
    assert train.timeout_s == 600 + 1800 and job.step("Swap").timeout_s == 0  # 10m of training, 30m to spare
    assert (job.step("Swap").gpus, job.step("ExtractPlate").gpus) == (1, 0)


def _reuse(path: Path, text: str, model: Path) -> None:
    """The shot file ``text`` without [source] and [model.options], reusing ``model``."""
    text = text.split("[source]")[0] + "[extract]" + text.split("[extract]")[1].split("[model.options]")[0] + \
        f'[model]\nreuse = "{model}"\n[merge]' + text.split("[merge]")[1]
    path.write_text(text)


def test_a_reused_model_has_no_training(write_shot: Callable[..., Path], tmp_path: Path, exe: str) -> None:
    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "checkpoint.pt").write_bytes(b"x")
    path = write_shot()
    original = path.read_text()
    _reuse(path, original, tmp_path / "trained")
    job = build_job(load_shot(path), exe)
    assert [step.name for step in job.steps] == ["ExtractPlate", "Export", "Swap"]
    assert job.step("Export").command[2] == str(tmp_path / "trained")
    assert job.step("Export").depends_on == ("ExtractPlate",)
    (tmp_path / "face.onnx").write_bytes(b"x")
    _reuse(path, original, tmp_path / "face.onnx")  # an exported model: no export either, the swap reads it
    faces = tmp_path / "dst_faces"  # the plate's faceset, extracted over the shot's frames
    faces.mkdir()
    write_alignments(faces, Alignments(frames={frame: FrameFaces(frame) for frame in range(1001, 1005)}))
    job = build_job(load_shot(path, {"shot.faces": str(faces)}), exe)
    assert [(step.name, step.depends_on) for step in job.steps] == [("Swap", ())]
    assert {f"--model={tmp_path / 'face.onnx'}", f"--faceset={faces}"} <= set(job.step("Swap").command)
    path.write_text(path.read_text() + f'[source]\nfaceset = "{tmp_path}"\n')
    with pytest.raises(DflError, match=r"\[source\] is for training; model.reuse names a trained model"):
        load_shot(path)


def test_plan_text(write_shot: Callable[..., Path], exe: str) -> None:
    plan = build_job(load_shot(write_shot()), exe).plan()
    assert "Train02: train 10m (2 of 2), resuming, until iteration 3; 1 task, after Train01" in plan
    assert "Swap: swap in chunks of 2 frames" in plan and "2 tasks (1001-1002, 1003-1004), after Export" in plan
    assert "; 1 task (1001-1002), after Export" in build_job(load_shot(write_shot(frames="1001-1002")), exe).plan()


def test_every_engine_module_has_the_interface() -> None:
    for name in ENGINES:
        module = engine(name)
        assert callable(module.check) and callable(module.write) and callable(module.submit)


GOLDEN_SWAP_JOB_INFO = """\
Plugin=CommandLine
Name=demo Swap
BatchName=demo
Comment=swap in chunks of 2 frames into {out}/swap
Priority=70
Frames=1001-1004
ChunkSize=2
Pool=gpu
SecondaryPool=spare
Group=rtx
JobDependencies={{Export}}
"""

GOLDEN_SWAP_PLUGIN_INFO = """\
Executable={exe}
Arguments=swap '{shot}/plate/plate.####.exr' --model={out}/work/model.onnx --out={out}/swap \
'--frames=<STARTFRAME>-<ENDFRAME>' --faceset={out}/work/dst_faces --no-progress --erode=5 --blur=10
Shell=default
ShellExecute=False
"""


def test_deadline10_golden_files(write_shot: Callable[..., Path], small_shot: Path, tmp_path: Path,
                                 exe: str) -> None:
    shot = load_shot(write_shot(), {"farm.gpus": 1, "farm.group": "rtx", "farm.pools": ["gpu", "spare"],
                                    "farm.priority": 70})
    written = deadline10.write(build_job(shot, exe), tmp_path / "d10")
    assert [path.name for path in written][-3:] == ["06_Swap.job_info.job", "06_Swap.plugin_info.job",
                                                     "submit_plan.json"]
    assert (tmp_path / "d10" / "06_Swap.job_info.job").read_text() == GOLDEN_SWAP_JOB_INFO.format(out=tmp_path)
    assert (tmp_path / "d10" / "06_Swap.plugin_info.job").read_text() == \
        GOLDEN_SWAP_PLUGIN_INFO.format(out=tmp_path, shot=small_shot, exe=exe)
    extract_info = (tmp_path / "d10" / "01_ExtractPlate.job_info.job").read_text()
    assert "Frames=0\nChunkSize=1\n" in extract_info and "Group=" not in extract_info  # a CPU step
    plan = json.loads((tmp_path / "d10" / "submit_plan.json").read_text())
    assert "TaskTimeoutMinutes=40\n" in (tmp_path / "d10" / "03_Train01.job_info.job").read_text()
    assert [(entry["step"], entry["depends_on"]) for entry in plan["jobs"]][2] == \
        ("Train01", ["ExtractPlate", "ExtractSource"])


def test_deadline10_refuses_gpus_without_a_group(write_shot: Callable[..., Path], tmp_path: Path, exe: str) -> None:
    job = build_job(load_shot(write_shot(), {"farm.gpus": 1}), exe)
    with pytest.raises(DflError, match=r"farm.gpus: Deadline 10 cannot require GPUs .*set farm.group"):
        deadline10.write(job, tmp_path / "d10")
    assert not (tmp_path / "d10").exists()


def test_deadline_cloud_bundle(write_shot: Callable[..., Path], small_shot: Path, tmp_path: Path,
                               exe: str, caplog: pytest.LogCaptureFixture) -> None:
    job = build_job(load_shot(write_shot(), {"farm.priority": 80}), exe)
    names = [path.name for path in deadline_cloud.write(job, tmp_path / "bundle")]
    assert names == ["template.json", "parameter_values.json", "asset_references.json"]
    values = json.loads((tmp_path / "bundle" / "parameter_values.json").read_text())
    assert values == {"parameterValues": [{"name": "deadline:priority", "value": 80}]}
    assets = json.loads((tmp_path / "bundle" / "asset_references.json").read_text())["assetReferences"]
    assert assets["inputs"]["directories"] == [f"{small_shot}/plate", f"{small_shot}/src"]
    assert assets["outputs"]["directories"] == [str(tmp_path / "swap"), str(tmp_path / "work")]
    with caplog.at_level(logging.WARNING):
        deadline_cloud.check(build_job(load_shot(write_shot(), {"farm.pools": ["gpu"]}), exe))
    assert "farm.pools / farm.group are not used by Deadline Cloud" in caplog.text


def test_cli_dry_run_writes_the_job(write_shot: Callable[..., Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "openjd"
    assert main(["farm", "submit", str(write_shot()), "--engine", "openjd", "--dry-run", "--out", str(out),
                 "--chunk-size", "3"]) == 0
    template = json.loads((out / "template.json").read_text())
    swap = template["steps"][-1]
    assert swap["parameterSpace"]["taskParameterDefinitions"][0]["range"] == ["1001-1003", "1004-1004"]
    assert capsys.readouterr().out.strip() == str(out / "template.json")


@pytest.mark.parametrize(("argv", "message"), [
    (["--engine", "deadline10", "--gpus", "1", "--dry-run", "--out", "OUT"], "farm.gpus: Deadline 10 cannot"),
    (["--engine", "openjd", "--dry-run"], "--dry-run needs --out DIR"),
    (["--engine", "openjd", "--dry-run", "--out", "OUT", "--frames", "1-5"], "shot.frames 1-5: frame 1 is outside"),
    (["--engine", "deadline-cloud", "--out", "OUT"], "--engine deadline-cloud: the `deadline` CLI is not installed"),
    (["--engine", "openjd", "--out", "OUT", "--nodes", "2"], "farm.nodes: `openjd run` runs one task at a time"),
    (["--engine", "openjd", "--out", "OUT", "--nodes", "0"], "farm.nodes 0: must be 1 or more"),
])
def test_cli_errors_are_one_line_and_write_nothing(write_shot: Callable[..., Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str], argv: list[str],
                                                   message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `deadline` CLI
    out = tmp_path / "out"
    argv = [str(out) if arg == "OUT" else arg for arg in argv]
    assert main(["farm", "submit", str(write_shot()), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dfl-vfx farm: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_shot_validate_prints_the_plan(write_shot: Callable[..., Path], capsys: pytest.CaptureFixture[str],
                                       exe: str) -> None:
    assert main(["shot", "validate", str(write_shot()), "--train-tasks", "3", "--engine-exe", exe]) == 0
    out = capsys.readouterr().out
    assert "valid; 4 frames 1001-1004" in out and "Train03: train 10m (3 of 3)" in out
    assert FRAMES not in out
    assert main(["shot", "validate", str(write_shot()), "--engine", "deadline10", "--engine-exe", exe]) == 0
    assert capsys.readouterr().out.endswith("--engine deadline10: it can take this job\n")  # gpus = 0: no group
    assert main(["shot", "validate", str(write_shot()), "--engine", "deadline10", "--gpus", "1"]) == 2
    assert "farm.gpus: Deadline 10 cannot require GPUs" in capsys.readouterr().err


def test_frames_with_gaps_are_chunked_by_position(write_shot: Callable[..., Path], exe: str, tmp_path: Path) -> None:
    job = build_job(load_shot(write_shot(frames="1001-1003,1008-1009")), exe)
    assert job.step("Swap").chunks == ("1001-1002", "1003,1008", "1009")
    assert [arg for arg in job.step("Swap").task_commands()[1] if arg.startswith("--frames")] == ["--frames=1003,1008"]
    with pytest.raises(DflError, match=r"Deadline 10 runs a chunk as <STARTFRAME>-<ENDFRAME>"):
        deadline10.check(job)


FAKE_DEADLINECOMMAND = """#!/bin/sh
# records its arguments and the job info it was given, answers a JobID like deadlinecommand
n=$(ls "$LOG" | wc -l)
cp "$2" "$LOG/$n.job"
echo "Result=Success"
echo "JobID=id$n"
"""


def test_deadline10_submit_fills_dependencies_with_job_ids(write_shot: Callable[..., Path], exe: str,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "deadlinecommand").write_text(FAKE_DEADLINECOMMAND)
    (bin_dir / "deadlinecommand").chmod(0o755)
    (tmp_path / "log").mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("LOG", str(tmp_path / "log"))
    assert deadline10.submit(build_job(load_shot(write_shot()), exe), tmp_path / "d10") == 0
    submitted = [(tmp_path / "log" / f"{n}.job").read_text() for n in range(6)]
    assert [text.splitlines()[1] for text in submitted] == [f"Name=demo {name}" for name in (
        "ExtractPlate", "ExtractSource", "Train01", "Train02", "Export", "Swap")]
    assert "JobDependencies=id0,id1\n" in submitted[2]  # Train01 after both extractions
    assert "JobDependencies=id4\n" in submitted[5]  # Swap after Export


@pytest.mark.parametrize("command", [["shot", "validate"], ["farm", "submit"]])
def test_what_an_engine_cannot_express_names_the_shot_file_before_anything_says_valid(
        write_shot: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        command: list[str]) -> None:
    shot = write_shot(frames="1001,1003-1004")  # chunks of 2 over a gap: OpenCue would swap 1002 too
    out = tmp_path / "cue"
    extra = ["--dry-run", "--out", str(out)] if command[0] == "farm" else []
    assert main([*command, str(shot), "--engine", "opencue", "--show", "sh", *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no "valid" and no plan before the refusal
    assert captured.err == (f"dfl-vfx {command[0]}: error: {shot}: shot.frames 1001,1003-1004: OpenCue runs a chunk "
                            "as #FRAME_START#-#FRAME_END#, which would swap the frames between; give one whole range "
                            "or farm.chunk_size = 1\n")
    assert not out.exists()


def test_shot_validate_spells_frames_with_gaps_as_they_are(write_shot: Callable[..., Path], exe: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shot", "validate", str(write_shot(frames="1001,1003-1004")), "--engine-exe", exe]) == 0
    assert "valid; 3 frames 1001,1003-1004 of " in capsys.readouterr().out


@pytest.mark.parametrize("command", [["shot"], ["shot", "validate"]])
def test_shot_help_teaches_every_table_and_key_of_a_shot_file(capsys: pytest.CaptureFixture[str],
                                                              command: list[str]) -> None:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = capsys.readouterr().out
    keys = {"shot": "name, plate, frames, output, work_dir, faces", "source": "faceset, footage",
            "model": "reuse, options", "comp": "nuke, write, blender, exe, version",
            "farm": "pools, group, priority, chunk_size, gpus, gpu_memory_gb, nodes, train_task_time, train_tasks, "
                    "iterations, show"}
    for table, known in keys.items():
        assert f"[{table}]".ljust(10) + known in text, table
    assert "[extract]" in text and "smooth" in text and "[merge]" in text and "docs/examples/shot.toml" in text


@pytest.mark.parametrize(("extracted", "message"), [
    ("1003-1004", "frames 1001-1002 were never extracted into it (it holds 1003-1004); extract them (dfl-vfx "
                  "extract PLATE --out {faces} --frames 1001-1002), or leave shot.faces out and the job extracts"),
    ("1001-1004 failing 1002", "frames 1002 were never extracted into it (it holds 1001,1003-1004)"),
    ("", "it holds no frame"),
    (None, "shot.faces: {faces}/alignments.json: no such file; run `dfl-vfx extract PLATE --out {faces}` first"),
])
def test_the_plate_s_faceset_must_cover_the_shot_s_frames(write_shot: Callable[..., Path], tmp_path: Path,
                                                          extracted: str | None, message: str) -> None:
    """A frame the faceset never extracted would be swapped with no face: the plate unchanged, the task exit 0."""
    faces = tmp_path / "dst_faces"
    faces.mkdir()
    if extracted is not None:
        frames = {frame: FrameFaces(frame) for frame in range(1001, 1005)} if extracted.startswith("1001-1004") else \
            {frame: FrameFaces(frame) for frame in (1003, 1004)} if extracted else {}
        if "failing" in extracted:
            frames[1002].error = "file missing: plate.1002.exr"
        write_alignments(faces, Alignments(frames=frames))
    with pytest.raises(DflError) as error:
        load_shot(write_shot(), {"shot.faces": str(faces)})
    assert message.format(faces=faces) in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith(f"{tmp_path / 'shot.toml'}: shot.faces")
