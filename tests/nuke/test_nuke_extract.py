"""The DFLExtract panel with the fake ``nuke`` and the real engine: a 2-frame extract of the demo plate into a
faceset whose path has spaces and quotes, a training run started in the background and stopped (it saves a
resumable checkpoint), the argument lists, and one-line messages for every problem."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))
TINY = ("model.archi=df-ud model.resolution=64 model.ae_dims=32 model.e_dims=16 model.d_dims=16 "
        "model.d_mask_dims=16 log_every=1 batch_size=2 preview_every=0")


def _extract_node(nuke: Any, plate: str, faceset: Path) -> Any:
    read = nuke.nodes.Read(file=plate, first=1001, last=1012, colorspace="default (linear)", raw=False)
    node = nuke.createNode("DFLExtract")
    node.setInput(0, read)
    for name, value in (("faceset", str(faceset)), ("engine", ENGINE), ("first_frame", 1001), ("last_frame", 1002),
                        ("face_type", "f"), ("size", 64), ("jobs", 1)):
        node[name].setValue(value)
    nuke.current["node"] = node
    return node


def test_extract_then_train_then_stop_leaves_a_resumable_model(nuke: Any, small_shot: Path, tmp_path: Path) -> None:
    from dfl_nuke import extract

    faceset = tmp_path / 'dst faces "v1"; $(id)'
    node = _extract_node(nuke, str(small_shot / "plate" / "plate.%04d.exr"), faceset)
    worker = extract.extract_faceset()
    assert worker is not None, nuke.messages
    assert node["status"].value() == "extract running"
    worker.join(timeout=300)
    assert not worker.is_alive() and nuke.messages == []
    assert node["status"].value() == f"faceset written: {faceset}"
    alignments = json.loads((faceset / "alignments.json").read_text())
    assert sorted(alignments["tracks"]) == ["1001", "1002"]
    assert json.loads((faceset / "faceset.json").read_text())["size"] == 64
    progress = nuke.ProgressTask.instances[-1].progress
    assert progress[-1] == 100 and progress == sorted(progress)

    # train on it (the same faceset as source: enough to run), then Stop: the trainer saves and exits
    node["src_faceset"].setValue(str(faceset))
    node["model_dir"].setValue(str(tmp_path / "model dir"))
    node["max_time"].setValue("10m")
    node["device"].setValue("cpu")
    node["train_settings"].setValue(TINY)
    worker = extract.start_training()
    assert worker is not None, nuke.messages
    task = nuke.ProgressTask.instances[-1]
    deadline = time.monotonic() + 240
    while "iteration" not in task.text and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert task.text.startswith("iteration "), task.text
    assert extract.start_training() is None and nuke.messages[-1] == "DFLExtract1: a training is already running; " \
                                                                      "Cancel it first"
    nuke.messages.clear()
    extract.stop_training()
    worker.join(timeout=180)
    assert not worker.is_alive() and nuke.messages == []
    status = node["status"].value()
    assert status.startswith("training stopped: stopped (signal) at iteration "), status
    from dfl_vfx.models.checkpoint import load_checkpoint

    state = load_checkpoint(tmp_path / "model dir")
    assert state["iteration"] == int(re.search(r"at iteration (\d+)", status).group(1)) >= 1


def test_cancel_from_the_progress_bar_stops_the_extract(nuke: Any, small_shot: Path, tmp_path: Path) -> None:
    from dfl_nuke import extract

    faceset = tmp_path / "faces"
    node = _extract_node(nuke, str(small_shot / "plate" / "plate.%04d.exr"), faceset)
    nuke.cancel_after["progress"] = 0  # the compositor presses the progress bar's Cancel at once
    worker = extract.extract_faceset()
    assert worker is not None
    worker.join(timeout=120)
    assert not worker.is_alive() and nuke.messages == []
    assert node["status"].value().startswith("extract cancelled")
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith(".")]  # no temp left


def test_train_arguments_are_plain_arguments(nuke: Any, tmp_path: Path) -> None:
    from dfl_nuke import extract

    src, dst = tmp_path / "src 'a'", tmp_path / 'dst "b"; rm -rf ~'
    src.mkdir()
    dst.mkdir()
    node = nuke.createNode("DFLExtract")
    for name, value in (("faceset", str(dst)), ("src_faceset", str(src)), ("model_dir", str(tmp_path / "m $(x)")),
                        ("engine", ENGINE), ("preset", "quick96"), ("max_time", "25m"), ("max_iters", 0),
                        ("train_settings", " lr=1e-5  batch_size=4 ")):
        node[name].setValue(value)
    assert extract.train_arguments(node) == [
        ENGINE, "train", f"--src={src}", f"--dst={dst}", f"--model-dir={tmp_path / 'm $(x)'}", "--preset=quick96",
        "--max-time=25m", "--set=lr=1e-5", "--set=batch_size=4"]
    assert extract.time_limit_s("90s") == 90 and extract.time_limit_s("8h") == 8 * 3600
    assert extract.time_limit_s("soon") is None
    assert extract.extract_progress("detect: 6/12 frames (50%), 1 frames/s") == 45
    assert extract.extract_progress("align: 12/12 frames (100%)") == 100
    progress = extract.TrainProgress(200, None)
    assert progress("iteration 50 src 0.1 dst 0.2 (3 it/s)") == 25 and progress("saved x") is None


def test_a_non_read_input_is_rendered_for_the_extract(nuke: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from dfl_nuke import extract

    node = nuke.createNode("DFLExtract")
    node.setInput(0, nuke.nodes.Grade())
    node["faceset"].setValue(str(tmp_path / "shot" / "faces"))
    node["engine"].setValue(ENGINE)
    node["first_frame"].setValue(1)
    node["last_frame"].setValue(2)
    rendered: list[tuple[str, int, int]] = []
    monkeypatch.setattr(nuke, "execute", lambda write, a, b, incr=1: rendered.append((write["file"].value(), a, b)))
    command = extract.extract_arguments(node)
    assert len(rendered) == 1 and rendered[0][1:] == (1, 2)
    plate = command[2]
    assert Path(plate).name == "input.####.exr" and Path(plate).parent.parent == tmp_path / "shot"
    assert command[3:] == [f"--out={tmp_path / 'shot' / 'faces'}", "--frames=1-2", "--face-type=wf", "--size=512",
                           "--select=largest", "--jobs=2"]


@pytest.mark.parametrize("case", ["no faceset", "missing engine", "non-exr input", "no source", "bad time",
                                  "engine error"])
def test_panel_problems_are_one_message(nuke: Any, tmp_path: Path, case: str) -> None:
    from dfl_nuke import extract

    node = _extract_node(nuke, str(tmp_path / "plate.%04d.exr"), tmp_path / "faces")
    (tmp_path / "faces").mkdir()
    node["src_faceset"].setValue(str(tmp_path / "faces"))
    node["model_dir"].setValue(str(tmp_path / "model"))
    start = extract.extract_faceset
    expected = {"no faceset": "set Faceset folder", "missing engine": "is not an executable file",
                "non-exr input": "plate.mov, not an EXR sequence", "no source": "set Source faceset first",
                "bad time": "Time limit 'soon': give e.g. 90s", "engine error": "extract failed: "}[case]
    if case == "no faceset":
        node["faceset"].setValue("")
    elif case == "missing engine":
        node["engine"].setValue(str(tmp_path / "none" / "dfl-vfx"))
    elif case == "non-exr input":
        node.input(0)["file"].setValue(str(tmp_path / "plate.mov"))
    elif case == "no source":
        node["src_faceset"].setValue("")
        start = extract.start_training
    elif case == "bad time":
        node["max_time"].setValue("soon")
        start = extract.start_training
    worker = start()
    if worker is not None:  # the engine started and refused the missing plate
        worker.join(timeout=120)
    assert len(nuke.messages) == 1, nuke.messages
    text = nuke.messages[0]
    assert text.startswith("DFLExtract1: ") and "\n" not in text and "Traceback" not in text
    assert expected in text, text


def _touched_knobs(module: Path) -> set[str]:
    """Knob names a module reads or writes on ``node`` (``node["x"]``, ``_text(node, "x")``, ``node.knob("x")``)."""
    import ast

    names: set[str] = set()
    for item in ast.walk(ast.parse(module.read_text())):
        if isinstance(item, ast.Subscript) and isinstance(item.value, ast.Name) and item.value.id == "node" \
                and isinstance(item.slice, ast.Constant):
            names.add(item.slice.value)
        elif isinstance(item, ast.Call) and isinstance(item.func, ast.Name) and item.func.id == "_text" \
                and isinstance(item.args[0], ast.Name) and item.args[0].id == "node":
            names.add(item.args[1].value)
    return names


@pytest.mark.parametrize(("module", "gizmo"), [("extract.py", "DFLExtract.gizmo"),
                                             ("native.py", "DFLSwapNative.gizmo")])
def test_the_gizmos_are_generated_and_hold_every_knob_the_python_touches(module: str, gizmo: str) -> None:
    from dfl_vfx.hosts import nk, nuke_extract_gizmo, nuke_native_gizmo

    plugin = Path(__file__).resolve().parents[2] / "nuke"
    text = (plugin / "gizmos" / gizmo).read_text(encoding="utf-8")
    generator = nuke_extract_gizmo if gizmo == "DFLExtract.gizmo" else nuke_native_gizmo
    assert text == generator.gizmo_text(), f"{gizmo} is stale: python -m {generator.__name__}"
    node = next(s for s in nk.parse(text) if isinstance(s, nk.Node) and s.cls == "Gizmo")
    knobs = {k.name for k in node.user_knobs} | {k.name for k in node.knobs}
    touched = _touched_knobs(plugin / "dfl_nuke" / module)
    assert len(touched) >= 8 and touched <= knobs, touched - knobs
    import importlib

    python = importlib.import_module(f"dfl_nuke.{module[:-3]}")
    buttons = " ".join(k.options.get("T", "") for k in node.user_knobs if k.type_id == 22)
    calls = re.findall(r"dfl_nuke\.\w+\.(\w+)\(\)", buttons)
    assert calls and all(callable(getattr(python, call)) for call in calls), calls


def test_stop_all_stops_every_run_at_nuke_s_exit(nuke: Any, tmp_path: Path) -> None:
    from dfl_nuke import extract

    marker = tmp_path / "stopped"
    # an engine stand-in that reports progress, then records the SIGTERM it gets (as the trainer saves on it)
    script = ("import signal, sys, time, pathlib\n"
              "signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path(sys.argv[1]).write_text('saved'), sys.exit(0)))\n"
              "print('iteration 1 src 0.5 dst 0.5 (1 it/s)', file=sys.stderr, flush=True)\n"
              "time.sleep(60)\n")
    finished: list[int | None] = []
    run = extract.EngineRun("DFLExtract1:training", [sys.executable, "-c", script, str(marker)], "t",
                            extract.TrainProgress(10, None), lambda r: finished.append(r.returncode))
    worker = run.start()
    deadline = time.monotonic() + 30
    while not nuke.ProgressTask.instances[-1].progress and time.monotonic() < deadline:
        time.sleep(0.1)
    assert nuke.ProgressTask.instances[-1].progress == [10]
    extract.stop_all(timeout=30)
    worker.join(timeout=30)
    assert marker.read_text() == "saved" and finished == [0] and extract._runs == {}
