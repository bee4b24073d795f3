"""The Submit button with the fake ``nuke`` and the real engine: the node's swap (and the script's comp) as a farm
job through dfl_host.farm; a dry run writes a real Open Job Description template, refusals are one message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))
OPENJD = str(Path(sys.executable).with_name("openjd"))


class FakePanel:
    """nuke.Panel: records the fields, answers with ``answers`` (and OK unless ``cancel``)."""

    answers: dict[str, str] = {}
    cancel = False
    shown: list[FakePanel] = []

    def __init__(self, title: str) -> None:
        self.title = title
        self.fields: dict[str, str] = {}
        FakePanel.shown.append(self)

    def addEnumerationPulldown(self, name: str, items: str) -> None:
        self.fields[name] = items.split()[0]

    def addSingleLineInput(self, name: str, value: str) -> None:
        self.fields[name] = value

    def show(self) -> int:
        self.fields.update(FakePanel.answers)
        return 0 if FakePanel.cancel else 1

    def value(self, name: str) -> str:
        return self.fields[name]


@pytest.fixture()
def panel(nuke: Any, monkeypatch: pytest.MonkeyPatch) -> type[FakePanel]:
    FakePanel.answers, FakePanel.cancel, FakePanel.shown = {}, False, []
    monkeypatch.setattr(nuke, "Panel", FakePanel, raising=False)
    monkeypatch.setattr(nuke, "NUKE_VERSION_MAJOR", 15, raising=False)
    monkeypatch.setattr(nuke, "NUKE_VERSION_MINOR", 1, raising=False)
    monkeypatch.delenv("DFL_FARM_ENGINE", raising=False)
    return FakePanel


def _node(nuke: Any, small_shot: Path, model: Path, cache: Path) -> Any:
    read = nuke.nodes.Read(file=str(small_shot / "plate" / "plate.%04d.exr"), first=1001, last=1012,
                           on_error="error", colorspace="default (linear)", raw=False)
    node = nuke.createNode("DFLSwap")
    node.setInput(0, read)
    for name, value in (("model", str(model)), ("engine", ENGINE), ("cache_root", str(cache)),
                        ("first_frame", 1001), ("last_frame", 1004), ("device", "cpu"), ("blur", 25.0)):
        node[name].setValue(value)
    nuke.current["node"] = node
    return node


def _submit(nuke: Any) -> None:
    from dfl_nuke.submit import submit_farm

    worker = submit_farm()
    assert worker is not None, nuke.messages
    worker.join(timeout=180)
    assert not worker.is_alive()


def test_a_dry_run_writes_a_real_openjd_job_into_the_node_s_cache(nuke: Any, panel: type[FakePanel],
                                                                  small_shot: Path, swap_model: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    node = _node(nuke, small_shot, swap_model[1], tmp_path / "cache")
    panel.answers = {"dry run folder": str(tmp_path / "job"), "chunk size": "3", "pools": "gpu, spare"}
    _submit(nuke)
    assert panel.shown[0].fields["engine"] == "openjd"  # the first engine offered
    assert len(nuke.messages) == 1 and nuke.messages[0].startswith("DFLSwap1: openjd job written to ")
    template = tmp_path / "job" / "template.json"
    done = subprocess.run([OPENJD, "check", str(template)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = {step["name"]: step for step in json.loads(template.read_text())["steps"]}
    assert list(steps) == ["ExtractPlate", "Swap"]  # an exported model: no training, no export
    swap = steps["Swap"]
    args = swap["script"]["actions"]["onRun"]["args"]
    assert swap["parameterSpace"]["taskParameterDefinitions"][0]["range"] == ["1001-1003", "1004-1004"]
    baked = Path(node["bake_file"].value())  # the node now reads the folder the farm swaps into
    assert f"--out={baked.parent}" in args and f"--model={swap_model[1]}" in args
    assert {"--blur=25", "--layers=rgba,matte,raw"} <= set(args)  # the node's settings, the layers it reads
    assert not any(arg.startswith("--device") for arg in args)  # the farm's machines choose their device
    shot_file = nuke.messages[0].rsplit("shot file ", 1)[1]
    assert Path(shot_file).parent == baked.parent.parent / "farm"


def test_the_comp_of_the_saved_script_goes_to_deadline10_s_nuke_plugin(nuke: Any, panel: type[FakePanel],
                                                                       small_shot: Path,
                                                                       swap_model: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    script = tmp_path / "sh010_comp.nk"
    script.write_text("# a saved comp\n")
    nuke.current["script"] = str(script)
    _node(nuke, small_shot, swap_model[1], tmp_path / "cache")
    panel.answers = {"engine": "deadline10", "dry run folder": str(tmp_path / "d10"), "group": "rtx",
                     "comp write node": "Write1", "priority": "70"}
    _submit(nuke)
    assert nuke.messages[0].startswith("DFLSwap1: deadline10 job written to "), nuke.messages
    comp_info = (tmp_path / "d10" / "03_Comp.job_info.job").read_text()
    assert comp_info.startswith("Plugin=Nuke\nName=sh010_comp_DFLSwap1 Comp\n") and "Priority=70\n" in comp_info
    assert "IsFrameDependent=true\n" in comp_info
    assert (tmp_path / "d10" / "03_Comp.plugin_info.job").read_text() == (
        f"SceneFile={script}\nVersion=15.1\nNukeX=False\nUseGpu=False\nWriteNode=Write1\n")


@pytest.mark.parametrize("case", ["no read", "priority", "cancel", "unsaved comp"])
def test_refusals_are_one_message(nuke: Any, panel: type[FakePanel], small_shot: Path,
                                  swap_model: tuple[Path, Path], tmp_path: Path, case: str) -> None:
    node = _node(nuke, small_shot, swap_model[1], tmp_path / "cache")
    panel.answers = {"dry run folder": str(tmp_path / "job")}
    if case == "no read":
        node.setInput(0, nuke.nodes.Blur())
    elif case == "priority":
        panel.answers["priority"] = "high"
    elif case == "cancel":
        panel.cancel = True
    elif case == "unsaved comp":
        panel.answers["comp write node"] = "Write1"
    from dfl_nuke.submit import submit_farm

    worker = submit_farm()
    if worker is not None:
        worker.join(timeout=180)
    expected = {
        "no read": "DFLSwap1: connect a Read of the plate's EXR sequence; the farm reads the plate itself",
        "priority": "DFLSwap1: priority 'high': give a whole number",
        "cancel": None,
        "unsaved comp": "DFLSwap1: save the script first: the farm renders the comp from the saved script",
    }[case]
    if expected is None:
        assert nuke.messages == [] and not (tmp_path / "job").exists()
    else:
        assert nuke.messages == [expected] and not (tmp_path / "job").exists()


def test_an_engine_refusal_comes_back_in_one_message(nuke: Any, panel: type[FakePanel], small_shot: Path,
                                                     swap_model: tuple[Path, Path], tmp_path: Path) -> None:
    _node(nuke, small_shot, swap_model[1], tmp_path / "cache")
    panel.answers = {"engine": "deadline10", "dry run folder": str(tmp_path / "d10")}  # GPUs and no group
    _submit(nuke)
    assert len(nuke.messages) == 1
    shot_file = tmp_path / "cache" / "untitled" / "DFLSwap1" / "farm" / "DFLSwap1.toml"  # written for the engine
    assert nuke.messages[0] == (f"DFLSwap1: farm submission refused: {shot_file}: farm.gpus: Deadline 10 cannot "
                                "require GPUs on a job (Swap); set farm.group to a group of GPU workers, or "
                                "farm.gpus = 0")
    assert not (tmp_path / "d10").exists()


def test_dflswap_has_the_submit_button_and_it_names_a_real_callback() -> None:
    from dfl_nuke import submit

    from dfl_vfx.hosts import nk
    from dfl_vfx.hosts.nuke_gizmo import GIZMO_DIR, SUBMIT_KNOB

    buttons = {}
    for file_name in ("DFLSwap.gizmo", "DFLMask.gizmo"):
        gizmo = next(s for s in nk.parse((GIZMO_DIR / file_name).read_text()) if isinstance(s, nk.Node))
        buttons[file_name] = {knob.name: knob for knob in gizmo.user_knobs if knob.type_id == 22}
    assert SUBMIT_KNOB not in buttons["DFLMask.gizmo"]
    script = buttons["DFLSwap.gizmo"][SUBMIT_KNOB].options["T"]
    assert script == "import dfl_nuke.submit; dfl_nuke.submit.submit_farm()" and callable(submit.submit_farm)


FAKE_DEADLINECOMMAND = """#!/bin/sh
# records the job info it was given with the script's DFLSwap1 pointer at that moment, answers a JobID
n=$(ls "$LOG" | wc -l)
cp "$2" "$LOG/$n.job"
cat "$SAVED" >> "$LOG/$n.job"
echo "Result=Success"
echo "JobID=id$n"
"""


@pytest.mark.parametrize("group", ["rtx", ""])
def test_a_comp_job_renders_a_saved_script_that_reads_the_farm_s_folder(
        nuke: Any, panel: type[FakePanel], small_shot: Path, swap_model: tuple[Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, group: str) -> None:
    script = tmp_path / "sh010_comp.nk"
    script.write_text("# a saved comp\n")
    nuke.current["script"] = str(script)
    node = _node(nuke, small_shot, swap_model[1], tmp_path / "cache")
    saved = tmp_path / "saved.txt"  # what DFLSwap1 read in each save of the script, in order
    saved.write_text("")

    def script_save() -> None:
        with saved.open("a") as handle:
            handle.write(f"saved bake_file={node['bake_file'].value()} first={node['bake_first'].value()}\n")

    monkeypatch.setattr(nuke, "scriptSave", script_save, raising=False)
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "deadlinecommand").write_text(FAKE_DEADLINECOMMAND)
    (bin_dir / "deadlinecommand").chmod(0o755)
    (tmp_path / "log").mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("LOG", str(tmp_path / "log"))
    monkeypatch.setenv("SAVED", str(saved))
    panel.answers = {"engine": "deadline10", "group": group, "comp write node": "Write1"}  # a real submission
    _submit(nuke)
    from dfl_nuke.swap_node import Bake

    farm_frames = Bake(node).cache.frames  # the folder the farm swaps into
    assert Path(farm_frames).parent.parent == tmp_path / "cache" / "sh010_comp" / "DFLSwap1"
    pointed = f"saved bake_file={farm_frames} first=1001\n"
    if group:
        shot_file = tmp_path / "cache" / "sh010_comp" / "DFLSwap1" / "farm" / "sh010_comp_DFLSwap1.toml"
        assert nuke.messages == [f"DFLSwap1: submitted to deadline10: id0, id1, id2; shot file {shot_file}"]
        # the script was saved pointing at the farm's folder before any job reached Deadline, comp included
        comp_job = (tmp_path / "log" / "2.job").read_text()
        assert comp_job.startswith("Plugin=Nuke\n") and comp_job.endswith(pointed)
        assert saved.read_text() == pointed and node["bake_file"].value() == farm_frames
    else:  # refused (GPUs without a group): the node reads what it read before, and that is saved again
        assert nuke.messages[0].startswith("DFLSwap1: farm submission refused: ")
        assert saved.read_text() == pointed + "saved bake_file= first=1\n"
        assert node["bake_file"].value() == "" and node["bake_hash"].value() == "" and node["stale"].value() is False
        assert list((tmp_path / "log").iterdir()) == []
