"""The `dfl-vfx` command: help that teaches, summaries, exit codes and one-line errors."""

import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfl_vfx.cli.main import COMMANDS, main
from dfl_vfx.demo.shot import astronaut_srgb
from dfl_vfx.models.checkpoint import load_checkpoint


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert len(capsys.readouterr().out) > 200


def test_extract_help_teaches_backends_and_examples(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    text = capsys.readouterr().out
    for needle in ("dlib", "onnx", "--smooth", "--frames", "examples:", "wf (whole_face)", "upsample"):
        assert needle in text


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "dfl-vfx"
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("dfl_vfx ")


def test_extract_info_sort_and_sheet(small_shot: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "dst"
    code, text, _ = run(capsys, "extract", str(small_shot / "plate" / "plate.####.exr"), "--out", str(out),
                        "--frames", "1001-1004", "--size", "128", "--smooth", "3", "--jobs", "1", "--no-progress")
    assert code == 0
    assert "extracted 4 face(s) from 4 frame(s)" in text
    assert (tmp_path / "dst_contact_sheet.png").is_file()
    code, text, _ = run(capsys, "faceset", "info", str(out))
    assert code == 0 and "4 face(s), whole_face 128px, exr in ACEScct" in text and "1001 .. 1004" in text
    code, text, _ = run(capsys, "faceset", "sort", str(out), "--by", "yaw", "--dry-run")
    assert code == 0 and "would rename 4 of 4 faces" in text
    code, text, _ = run(capsys, "faceset", "contact-sheet", str(out), "--out", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").is_file()
    # rerun resumes
    code, text, _ = run(capsys, "extract", str(small_shot / "plate" / "plate.####.exr"), "--out", str(out),
                        "--frames", "1001-1004", "--size", "128", "--smooth", "3", "--jobs", "1", "--no-progress")
    assert code == 0 and "4 frame(s) already extracted were kept" in text


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["extract", "missing/plate.####.exr", "--out", "x"], "missing/plate.####.exr"),
        (["extract", "{shot}/plate/plate.####.exr", "--out", "{tmp}/o", "--face-type", "quarter"], "quarter"),
        (["extract", "{shot}/plate/plate.####.exr", "--out", "{tmp}/o", "--frames", "10-x"], "--frames '10-x'"),
        (["extract", "{shot}/plate/plate.####.exr", "--out", "{tmp}/o", "--colorspace", "sRGBB"], "sRGBB"),
        (["faceset", "info", "{tmp}"], "faceset.json"),
        (["faceset", "import-dfl", "{tmp}/none", "--out", "{tmp}/o"], "none"),
    ],
)
def test_user_errors_are_one_line_with_exit_2(argv: list[str], needle: str, small_shot: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    argv = [a.format(shot=small_shot, tmp=tmp_path) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dfl-vfx ") and needle in lines[0]
    assert "Traceback" not in err


def test_no_face_anywhere_is_an_error_with_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"empty.{i + 1:04d}.png"), np.zeros((64, 64, 3), np.uint8))
    code, out, err = run(capsys, "extract", str(tmp_path / "empty.####.png"), "--out", str(tmp_path / "o"),
                         "--jobs", "1", "--no-progress")
    assert code == 2 and "no face in 2 frame(s): 1-2" in out and "no faces extracted" in err


def test_colorspaces_lists_the_config(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "colorspaces")
    assert code == 0 and "ACEScg" in out.splitlines() and "ACEScct" in out.splitlines()


def test_extract_from_a_photo_with_srgb_colorspace(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photo = tmp_path / "collins.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_srgb(), cv2.COLOR_RGB2BGR))
    code, out, _ = run(capsys, "extract", str(photo), "--out", str(tmp_path / "f"), "--size", "128",
                       "--select", "largest", "--jobs", "1", "--no-progress")
    assert code == 0 and "extracted 1 face(s) from 1 frame(s)" in out


def test_demo_runs_the_main_job_and_reuses_its_shot(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["demo", "--out", str(tmp_path), "--frames", "2", "--source-photos", "2", "--jobs", "1",
            "--train-time", "3s"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert "extracted 2 face(s) from 2 frame(s)" in out  # plate frames and source photos alike
    for name in ("dst_faces", "src_faces"):
        assert (tmp_path / f"{name}_contact_sheet.png").is_file()
        assert len(list((tmp_path / name).glob("*.exr"))) == 2
    assert "trained " in out and (tmp_path / "model" / "preview.png").is_file()
    assert (tmp_path / "model.onnx").is_file() and f"exported: {tmp_path / 'model.onnx'}" in out
    from dfl_vfx.hosts.nk import graph, parse

    wiring = graph(parse((tmp_path / "comp.nk").read_text()))  # the demo's Nuke script: plate -> DFLSwap -> Write
    assert wiring["DFLSwap1"].inputs[0].name == "Plate" and wiring["Write1"].inputs[0].name == "DFLSwap1"
    first = load_checkpoint(tmp_path / "model")["iteration"]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "reusing" in out and "2 frame(s) already extracted were kept" in out
    assert load_checkpoint(tmp_path / "model")["iteration"] > first  # training resumed, not restarted


def test_sigterm_unwinds_like_ctrl_c(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "from dfl_vfx.cli import main as m\n"
        "def run(args):\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    finally:\n"
        "        open(sys.argv[1], 'w').write('saved')\n"
        "m.COMMANDS['colorspaces'].run = run\n"
        "m.colorspaces_cmd.run = run\n"
        "sys.exit(m.main(['colorspaces']))\n"
    )
    marker = tmp_path / "marker"
    result = subprocess.run([sys.executable, "-c", script, str(marker)], capture_output=True, text=True)
    assert result.returncode == 130
    assert marker.read_text() == "saved"  # cleanup ran before exit
    assert "interrupted; rerun the same command to resume" in result.stderr
    assert "Traceback" not in result.stderr


def test_native_crash_leaves_a_trace_in_the_log(tmp_path: Path) -> None:
    """A segfault in a C library must not be silent: faulthandler writes the Python stacks to the log."""
    log = tmp_path / "dfl.log"
    script = (
        "import faulthandler, sys\n"
        "from dfl_vfx.cli import main as cli\n"
        "def crash(args):\n"
        "    faulthandler._sigsegv()\n"
        "cli.COMMANDS['colorspaces'].run = crash\n"
        "parser_builder = cli.build_parser\n"
        "def build():\n"
        "    p = parser_builder()\n"
        "    p._subparsers._group_actions[0].choices['colorspaces'].set_defaults(run=crash)\n"
        "    return p\n"
        "cli.build_parser = build\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONFAULTHANDLER"}
    result = subprocess.run([sys.executable, "-c", script, "--log-file", str(log), "colorspaces"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    text = log.read_text()
    assert "Segmentation fault" in text
    assert "in crash" in text  # the Python frame that was running


def test_frames_outside_the_plate_are_one_refusal_in_every_command(tmp_path: Path, swap_model,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """--frames 1001-1006 on a 1001-1004 plate: swap exited 1 (retried by a farm) with the frames failed, extract
    skipped them at exit 0, host script nuke wrote the script, host matrices listed them as missing."""
    plate = tmp_path / "plate"
    plate.mkdir()
    for frame in (1001, 1002, 1003, 1004):
        (plate / f"plate.{frame}.exr").write_bytes(b"")  # refused before any frame is read
    pattern = str(plate / "plate.####.exr")
    refusal = (f"--frames 1001-1006: frame(s) 1005-1006 outside the plate {pattern} (frames 1001-1004 on disk); "
               "choose frames within 1001-1004\n")
    model = str(swap_model[1])
    commands = {
        "swap": ["swap", pattern, "--model", model, "--out", str(tmp_path / "swap")],
        "extract": ["extract", pattern, "--out", str(tmp_path / "faces")],
        "eval": ["eval", pattern, "--src-faceset", str(plate)],  # the swap output stands in for the plate
        "host": ["host", "script", "nuke", str(tmp_path / "comp.nk"), "--plate", pattern, "--model", model],
    }
    for command, argv in commands.items():
        code, out, err = run(capsys, *argv, "--frames", "1001-1006")
        assert (code, out, err) == (2, "", f"dfl-vfx {command}: error: {refusal}"), command
    code, _, err = run(capsys, "host", "matrices", str(tmp_path / "faces"), "--model", model, "--plate", pattern,
                       "--frames", "1001-1006")
    assert (code, err) == (2, f"dfl-vfx host: error: {refusal}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plate"]  # nothing written
    code, _, err = run(capsys, "host", "script", "nuke", str(tmp_path / "comp.nk"), "--plate",
                       str(plate / "nope.####.exr"), "--model", model, "--frames", "1001-1004")
    assert (code, err) == (2, f"dfl-vfx host: error: {plate / 'nope.####.exr'}: no files match this pattern\n")
    assert not (tmp_path / "comp.nk").exists()


def _helps(parser, prog: str = "dfl-vfx"):
    """(prog, help text) of a parser and every sub-command under it."""
    import argparse

    yield prog, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _helps(child, f"{prog} {name}")


def test_help_examples_print_as_shell_lines() -> None:
    """A backslash-newline in a non-raw string printed `model.onnx       --faceset` on one line."""
    from dfl_vfx.cli.main import build_parser

    examples = 0
    for prog, text in _helps(build_parser()):
        lines = text.splitlines()
        for number, line in enumerate(lines):
            if not line.lstrip().startswith("dfl-vfx "):
                continue
            examples += 1
            assert not re.search(r"\S {2,}--", line.split(" # ")[0]), f"{prog}: {line!r}"
            if line.endswith("\\"):  # a continuation: the next line carries on the command, indented
                assert line.endswith(" \\") and lines[number + 1].startswith("      -"), f"{prog}: {line!r}"
    assert examples > 20


def test_host_actions_have_their_own_help_and_install_names_every_gizmo(capsys: pytest.CaptureFixture) -> None:
    from dfl_vfx.cli.main import build_parser

    helps = dict(_helps(build_parser()))
    gizmos = sorted(p.stem for p in (Path(__file__).parents[2] / "nuke" / "gizmos").glob("*.gizmo"))
    assert gizmos == ["DFLExtract", "DFLMask", "DFLSwap", "DFLSwapNative"]
    install = " ".join(helps["dfl-vfx host install"].split())
    assert all(f"{gizmo}," in install or f"{gizmo} " in install for gizmo in gizmos), install
    for action in ("script", "matrices"):
        text = helps[f"dfl-vfx host {action}"]
        assert "Copies the Nuke plugin" not in text and f"dfl-vfx host {action} " in text.split("example")[-1]


def test_swap_help_lists_the_mask_modes_the_merge_accepts() -> None:
    from dfl_vfx.cli.main import build_parser
    from dfl_vfx.merge.masks import DFL_MASK_MODES, MASK_NAMES

    text = " ".join(dict(_helps(build_parser()))["dfl-vfx swap"].split("mask modes:")[1].split())
    assert text.startswith(", ".join(MASK_NAMES)) and "DeepFaceLab's 0..9 are also accepted" in text
    assert all(f"{number}={mode}" in text for number, mode in DFL_MASK_MODES.items())
