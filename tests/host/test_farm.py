"""The hosts' farm submission: a node's settings to a shot file and a `dfl-vfx farm submit` argument list, run for
real against the demo shot (a dry run writes a real Open Job Description template; errors come back in one line)."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dfl_host.farm import (
    SubmitFailed,
    frames_text,
    override_args,
    shot_name,
    shot_text,
    submit,
    submit_command,
    submit_shot,
    write_shot,
)
from dfl_vfx.farm.shot import load_shot

ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))
REPO = Path(__file__).resolve().parents[2]


def _shot(small_shot: Path, tmp_path: Path, frames: str = "1001-1004") -> dict:
    return {"shot": {"name": "sh010", "plate": f"{small_shot}/plate/plate.####.exr", "frames": frames,
                     "output": f"{tmp_path}/swap", "work_dir": f"{tmp_path}/work"},
            "source": {"footage": f"{small_shot}/src/src.####.png"},
            "model": {"options": {"archi": "df-ud", "resolution": 64, "ae_dims": 32}},
            "merge": {"blur": 12.5, "color_transfer": "rct", "erode": None},
            "farm": {"pools": ["gpu", "spare"], "chunk_size": 2, "gpus": 0, "train_tasks": 1}}


def test_shot_text_is_toml_the_engine_reads(small_shot: Path, tmp_path: Path) -> None:
    shot = _shot(small_shot, tmp_path)
    shot["shot"]["name"] = 'it\'s "odd" \\ né\t'
    document = tomllib.loads(shot_text(shot))
    assert document["shot"]["name"] == 'it\'s "odd" \\ né\t'
    assert document["model"]["options"] == {"archi": "df-ud", "resolution": 64, "ae_dims": 32}
    assert document["merge"] == {"blur": 12.5, "color_transfer": "rct"}  # None: left out (the engine's default)
    assert document["farm"]["pools"] == ["gpu", "spare"]
    shot["shot"]["name"] = "sh010"
    loaded = load_shot(write_shot(str(tmp_path / "shots" / "sh010.toml"), shot))
    assert (loaded.name, loaded.frames, loaded.farm.chunk_size) == ("sh010", [1001, 1002, 1003, 1004], 2)
    assert [path.name for path in (tmp_path / "shots").iterdir()] == ["sh010.toml"]  # no temporary file left
    with pytest.raises(ValueError, match="nan cannot be written"):
        shot_text({"merge": {"blur": float("nan")}})


def test_argument_lists_never_shell_strings(tmp_path: Path) -> None:
    args = submit_command(str(tmp_path / "my shot.toml"), "deadline10", exe=ENGINE, dry_run=True,
                          out=str(tmp_path / "out dir"), overrides={"pools": ["gpu", "spare"], "chunk_size": 8,
                                                                    "group": None})
    assert args == [ENGINE, "farm", "submit", str(tmp_path / "my shot.toml"), "--engine=deadline10", "--dry-run",
                    f"--out={tmp_path / 'out dir'}", "--pool=gpu", "--pool=spare", "--chunk-size=8"]
    with pytest.raises(SubmitFailed, match="farm engine 'tractor': choose one of openjd, deadline-cloud"):
        submit_command("shot.toml", "tractor", exe=ENGINE)
    with pytest.raises(ValueError, match="unknown farm override 'colour'"):
        override_args({"colour": 1})


def test_job_ids_of_every_engine_s_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `dfl-vfx farm submit` prints for Deadline 10 / OpenCue (STEP: JobID=ID) and Deadline Cloud's CLI."""
    fake = tmp_path / "dfl-vfx"
    fake.write_text("#!/bin/sh\necho 'Swap: JobID=65f0a1'\necho 'demo-sh010: JobID=2f6b0c1e-cue'\n"
                    "echo 'Submitted job bundle: /x'\necho 'job-0123456789abcdef0123456789abcdef'\n")
    fake.chmod(0o755)
    result = submit("shot.toml", "opencue", exe=str(fake))
    assert result.job_ids == ["65f0a1", "2f6b0c1e-cue", "job-0123456789abcdef0123456789abcdef"]
    assert result.files == []


def test_names_and_frames() -> None:
    assert shot_name("DFLSwap1 (comp v2)") == "DFLSwap1_comp_v2" and shot_name("..") == ".." and shot_name("") == "shot"
    assert frames_text([1010, 1001, 1002, 1003, 1003, 1012]) == "1001-1003,1010,1012"


def test_dry_run_writes_a_real_openjd_template(small_shot: Path, tmp_path: Path) -> None:
    out = tmp_path / "openjd"
    result = submit_shot(str(tmp_path / "sh010.toml"), _shot(small_shot, tmp_path), "openjd", exe=ENGINE,
                         dry_run=True, out=str(out), overrides={"chunk_size": 3})
    assert result.files == [str(out / "template.json")] and result.job_ids == []
    template = json.loads((out / "template.json").read_text())
    assert [step["name"] for step in template["steps"]] == ["ExtractPlate", "ExtractSource", "Train01", "Export",
                                                            "Swap"]
    swap = template["steps"][-1]
    assert swap["parameterSpace"]["taskParameterDefinitions"][0]["range"] == ["1001-1003", "1004-1004"]
    assert {"--blur=12.5", "--color-transfer=rct"} <= set(swap["script"]["actions"]["onRun"]["args"])
    done = subprocess.run([str(Path(sys.executable).with_name("openjd")), "check", str(out / "template.json")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_refused_shot_is_one_line_and_writes_nothing(small_shot: Path, tmp_path: Path) -> None:
    out = tmp_path / "openjd"
    with pytest.raises(SubmitFailed) as caught:
        submit_shot(str(tmp_path / "sh010.toml"), _shot(small_shot, tmp_path, frames="990-1004"), "openjd",
                    exe=ENGINE, dry_run=True, out=str(out))
    assert str(caught.value) == f"{tmp_path / 'sh010.toml'}: shot.frames 990-1004: frame 990 is outside the plate " \
                                "(1001-1012 on disk); choose frames within it"
    assert not out.exists()


FAKE_DEADLINECOMMAND = """#!/bin/sh
n=$(ls "$LOG" | wc -l)
cp "$2" "$LOG/$n.job"
echo "Result=Success"
echo "JobID=6630aa$n"
"""


def test_submit_returns_the_farm_job_ids(small_shot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "deadlinecommand").write_text(FAKE_DEADLINECOMMAND)
    (bin_dir / "deadlinecommand").chmod(0o755)
    (tmp_path / "log").mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("LOG", str(tmp_path / "log"))
    result = submit_shot(str(tmp_path / "sh010.toml"), _shot(small_shot, tmp_path), "deadline10", exe=ENGINE,
                         out=str(tmp_path / "d10"), overrides={"priority": 70})
    assert result.job_ids == [f"6630aa{n}" for n in range(5)]  # ExtractPlate, ExtractSource, Train01, Export, Swap
    assert "Priority=70\n" in (tmp_path / "log" / "4.job").read_text()


def test_the_helper_runs_in_python_39(python39: str, small_shot: Path, tmp_path: Path) -> None:
    script = """
import json, sys
from dfl_host.farm import submit_shot
shot = json.loads(sys.argv[3])
result = submit_shot(sys.argv[2] + "/sh010.toml", shot, "deadline10", exe=sys.argv[1], dry_run=True,
                     out=sys.argv[2] + "/d10", overrides={"group": "rtx"})
print(json.dumps({"version": list(sys.version_info[:2]), "files": result.files}))
"""
    shot = _shot(small_shot, tmp_path)
    done = subprocess.run([python39, "-c", script, ENGINE, str(tmp_path), json.dumps(shot)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["version"] == [3, 9]
    assert [Path(path).name for path in report["files"]][-1] == "submit_plan.json" and len(report["files"]) == 11
