"""OpenCue (the real pyoutline, serialised offline), the comp render step and multi-node training on every engine:
golden files, the real `openjd check`, and one-line refusals that write nothing."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from xml.dom.minidom import parseString

import pytest

from dfl_vfx.cli.main import main
from dfl_vfx.errors import DflError
from dfl_vfx.farm import deadline10, openjd
from dfl_vfx.farm import opencue as cue
from dfl_vfx.farm.job import build_job
from dfl_vfx.farm.shot import load_shot

OPENJD = str(Path(sys.executable).parent / "openjd")
FARM = {"farm.gpus": 2, "farm.gpu_memory_gb": 16, "farm.nodes": 2, "farm.group": "rtx", "farm.show": "dfl",
        "farm.priority": 70, "farm.train_tasks": 1}


@pytest.fixture()
def exe(tmp_path: Path) -> str:
    path = tmp_path / "bin" / "dfl-vfx"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def _comp_shot(write_shot: Callable[..., Path], tmp_path: Path, comp: str) -> Path:
    (tmp_path / "comp.nk").write_text("# a Nuke script\n")
    (tmp_path / "comp.blend").write_bytes(b"BLENDER")
    return write_shot(extra=f"\n[comp]\n{comp}\n")


NUKE_COMP = 'nuke = "comp.nk"\nwrite = "Write1"\nversion = "15.1"'
BLENDER_COMP = 'blender = "comp.blend"\nexe = "/opt/blender/blender"'


def _pretty(xml: str) -> str:
    return parseString(xml).toprettyxml(indent="  ")


GOLDEN = Path(__file__).resolve().parent / "golden"


def test_opencue_job_spec_golden(write_shot: Callable[..., Path], small_shot: Path, tmp_path: Path,
                                 exe: str) -> None:
    job = build_job(load_shot(_comp_shot(write_shot, tmp_path, NUKE_COMP), FARM), exe)
    sessions = Path.home() / ".opencue" / "sessions"  # where pyoutline's set-up would write its session
    before = sorted(sessions.iterdir()) if sessions.is_dir() else []
    (spec,) = cue.write(job, tmp_path / "cue")
    assert (sorted(sessions.iterdir()) if sessions.is_dir() else []) == before
    assert sorted(path.name for path in (tmp_path / "cue").iterdir()) == ["job.xml"]
    assert spec.name == "job.xml"
    expected = (GOLDEN / "opencue_job.xml").read_text().format(user=getpass.getuser(), uid=os.getuid(), exe=exe,
                                                               shot=small_shot, tmp=tmp_path)
    assert _pretty(spec.read_text()) == expected


def test_opencue_without_a_show_or_a_cuebot_is_one_line(write_shot: Callable[..., Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHOW", "CUEBOT_HOSTS", "OPENCUE_CONFIG_FILE", "OPENCUE_CONF"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.config/opencue/opencue.yaml
    shot, out = str(write_shot()), tmp_path / "out"
    cases = [(["--dry-run"], "farm.show: OpenCue files every job under a show; set farm.show (or $SHOW)"),
             (["--show", "dfl"], "--engine opencue: no Cuebot configured; set CUEBOT_HOSTS (or an opencue.yaml)")]
    for argv, message in cases:
        assert main(["farm", "submit", shot, "--engine", "opencue", "--out", str(out), *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("dfl-vfx farm: error: ") and message in err and err.count("\n") == 1
        assert not out.exists()
    monkeypatch.setenv("SHOW", "dfl")  # the show may come from the environment, as in pyoutline
    assert main(["farm", "submit", shot, "--engine", "opencue", "--dry-run", "--out", str(out)]) == 0
    assert "<show>dfl</show>" in (out / "job.xml").read_text()


def test_comp_and_nodes_in_an_openjd_template(write_shot: Callable[..., Path], tmp_path: Path, exe: str) -> None:
    job = build_job(load_shot(_comp_shot(write_shot, tmp_path, BLENDER_COMP), FARM), exe)
    (template,) = openjd.write(job, tmp_path / "openjd")
    done = subprocess.run([OPENJD, "check", str(template)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = {step["name"]: step for step in json.loads(template.read_text())["steps"]}
    comp = steps["Comp"]
    assert comp["script"]["actions"]["onRun"] == {
        "command": "/opt/blender/blender",
        "args": ["-b", str(tmp_path / "comp.blend"), "-s", "{{Task.Param.First}}", "-e", "{{Task.Param.Last}}",
                 "-a"]}
    assert comp["parameterSpace"] == {"taskParameterDefinitions": [
        {"name": "First", "type": "INT", "range": [1001, 1003]},
        {"name": "Last", "type": "INT", "range": [1002, 1004]}], "combination": "(First, Last)"}
    assert comp["dependencies"] == [{"dependsOn": "Swap"}]
    train = steps["Train01"]
    assert train["parameterSpace"] == {"taskParameterDefinitions": [
        {"name": "NodeRank", "type": "INT", "range": "0-1"}]}
    assert train["script"]["actions"]["onRun"]["args"][-3:] == [
        "--nnodes=2", "--node-rank={{Task.Param.NodeRank}}", f"--rdzv-dir={tmp_path}/work/rendezvous/Train01"]
    summary = subprocess.run([OPENJD, "summary", str(template)], capture_output=True, text=True, check=False)
    assert summary.returncode == 0, summary.stderr
    assert job.step("Comp").task_commands()[1][3:] == ["-s", "1003", "-e", "1004", "-a"]
    assert [command[-2] for command in job.step("Train01").task_commands()] == ["--node-rank=0", "--node-rank=1"]
    nuke = build_job(load_shot(_comp_shot(write_shot, tmp_path, NUKE_COMP), FARM), exe)
    (template,) = openjd.write(nuke, tmp_path / "openjd_nuke")
    done = subprocess.run([OPENJD, "check", str(template)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    comp = json.loads(template.read_text())["steps"][-1]
    assert comp["script"]["actions"]["onRun"]["args"] == ["-x", "-X", "Write1", "-F", "{{Task.Param.Frames}}",
                                                          str(tmp_path / "comp.nk")]
    assert comp["parameterSpace"] == {"taskParameterDefinitions": [
        {"name": "Frames", "type": "STRING", "range": ["1001-1002", "1003-1004"]}]}


GOLDEN_COMP_JOB_INFO = """\
Plugin=Nuke
Name=demo Comp
BatchName=demo
Comment=render the Nuke comp comp.nk (Write1)
Priority=70
Frames=1001-1004
ChunkSize=2
JobDependencies={Swap}
IsFrameDependent=true
"""

GOLDEN_COMP_PLUGIN_INFO = """\
SceneFile={tmp}/comp.nk
Version=15.1
NukeX=False
UseGpu=False
WriteNode=Write1
"""

GOLDEN_TRAIN_JOB_INFO = """\
Plugin=CommandLine
Name=demo Train01
BatchName=demo
Comment=train 10m on 2 nodes (1 of 1), resuming, until iteration 3
Priority=70
Frames=0-1
ChunkSize=1
MachineLimit=2
Group=rtx
TaskTimeoutMinutes=40
JobDependencies={ExtractPlate},{ExtractSource}
"""


def test_deadline10_comp_and_nodes_golden(write_shot: Callable[..., Path], tmp_path: Path, exe: str) -> None:
    job = build_job(load_shot(_comp_shot(write_shot, tmp_path, NUKE_COMP), FARM), exe)
    names = [path.name for path in deadline10.write(job, tmp_path / "d10")]
    assert names[-3:] == ["06_Comp.job_info.job", "06_Comp.plugin_info.job", "submit_plan.json"]
    assert (tmp_path / "d10" / "06_Comp.job_info.job").read_text() == GOLDEN_COMP_JOB_INFO
    assert (tmp_path / "d10" / "06_Comp.plugin_info.job").read_text() == GOLDEN_COMP_PLUGIN_INFO.format(tmp=tmp_path)
    assert (tmp_path / "d10" / "03_Train01.job_info.job").read_text() == GOLDEN_TRAIN_JOB_INFO
    train_args = (tmp_path / "d10" / "03_Train01.plugin_info.job").read_text().splitlines()[1]
    assert train_args.endswith(f"--nnodes=2 '--node-rank=<STARTFRAME>' --rdzv-dir={tmp_path}/work/rendezvous/Train01")
    blender = build_job(load_shot(_comp_shot(write_shot, tmp_path, BLENDER_COMP), FARM), exe)
    deadline10.write(blender, tmp_path / "d10b")
    assert (tmp_path / "d10b" / "06_Comp.plugin_info.job").read_text() == (
        f"Executable=/opt/blender/blender\nArguments=-b {tmp_path}/comp.blend -s '<STARTFRAME>' -e '<ENDFRAME>' -a\n"
        "Shell=default\nShellExecute=False\n")
    assert "Plugin=CommandLine\n" in (tmp_path / "d10b" / "06_Comp.job_info.job").read_text()
    versionless = build_job(load_shot(_comp_shot(write_shot, tmp_path, 'nuke = "comp.nk"'), FARM), exe)
    with pytest.raises(DflError, match=r"comp.version: Deadline 10's Nuke plugin runs a Nuke version by number"):
        deadline10.write(versionless, tmp_path / "d10c")
    assert not (tmp_path / "d10c").exists()


@pytest.mark.parametrize(("comp", "frames", "message"), [
    ('nuke = "comp.nk"\nblender = "comp.blend"', "1001-1004", "[comp] needs exactly one of nuke"),
    ('nuke = "absent.nk"', "1001-1004", "absent.nk: no such file"),
    ('blender = "comp.blend"\nwrite = "Write1"', "1001-1004", "comp.write is for a Nuke comp"),
    (NUKE_COMP, "1001-1002,1004", "[comp] renders whole frame ranges"),
    ('nuke = "comp.nk"\nscript = "x"', "1001-1004", "unknown key comp.script"),
])
def test_comp_errors_name_the_key(write_shot: Callable[..., Path], tmp_path: Path, comp: str, frames: str,
                                  message: str) -> None:
    (tmp_path / "comp.nk").write_text("")
    (tmp_path / "comp.blend").write_text("")
    with pytest.raises(DflError) as error:
        load_shot(write_shot(frames=frames, extra=f"\n[comp]\n{comp}\n"))
    assert message in str(error.value) and "\n" not in str(error.value)


class FakeCueJob:
    def __init__(self, name: str) -> None:
        self._name = name

    def name(self) -> str:
        return self._name

    def id(self) -> str:
        return "2f6b0c1e-cue"


def test_opencue_submit_launches_the_spec_on_the_configured_cuebot(write_shot: Callable[..., Path], tmp_path: Path,
                                                                   exe: str, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import opencue

    launched: list[str] = []

    def launch(spec: str) -> list[FakeCueJob]:
        launched.append(spec)
        return [FakeCueJob("dfl-demo-demo")]

    monkeypatch.setattr(opencue.api, "launchSpecAndWait", launch)
    monkeypatch.setenv("CUEBOT_HOSTS", "cuebot.example")
    job = build_job(load_shot(_comp_shot(write_shot, tmp_path, BLENDER_COMP), FARM), exe)
    assert cue.submit(job, tmp_path / "cue") == 0
    assert launched == [(tmp_path / "cue" / "job.xml").read_text()]  # the spec written is the spec launched
    assert "<cmd>/opt/blender/blender -b " in launched[0]
    assert "-s '#FRAME_START#' -e '#FRAME_END#' -a</cmd>" in launched[0]
    assert capsys.readouterr().out == "dfl-demo-demo: JobID=2f6b0c1e-cue\n"


def test_opencue_without_pyoutline_is_one_line(write_shot: Callable[..., Path], tmp_path: Path, exe: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "outline", None)  # as if the opencue extra were not installed
    job = build_job(load_shot(write_shot(), {"farm.show": "dfl"}), exe)
    with pytest.raises(DflError, match=r"^--engine opencue: opencue-pyoutline is not installed; pip install "
                                       r"'dfl-vfx\[opencue\]'"):
        cue.write(job, tmp_path / "cue")
    assert not (tmp_path / "cue").exists()


def test_opencue_gpu_memory_0_is_no_requirement(write_shot: Callable[..., Path], tmp_path: Path, exe: str) -> None:
    """farm.gpu_memory_gb = 0 (docs: none) was serialised as pyoutline's default <gpu_memory>1g</gpu_memory>."""
    job = build_job(load_shot(write_shot(), FARM | {"farm.gpu_memory_gb": 0}), exe)
    (spec,) = cue.write(job, tmp_path / "cue")
    layers = parseString(spec.read_text()).getElementsByTagName("layer")
    gpu_layers = {layer.getAttribute("name"): [node.firstChild.data for node in layer.getElementsByTagName(tag)]
                  for layer in layers for tag in ("gpu_memory",) if layer.getElementsByTagName("gpus")}
    assert gpu_layers and all(memory == ["0g"] for memory in gpu_layers.values()), gpu_layers
    assert "1g" not in spec.read_text()
