"""`dfl-vfx swap` and `dfl-vfx serve` from the command line: help, a chunk, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from dfl_vfx.cli.main import main
from dfl_vfx.io.image import Image, write_image


def test_swap_help_teaches_layers_and_masks(capsys) -> None:
    try:
        main(["swap", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    text = capsys.readouterr().out
    for needle in ("mask.A", "face.RGBA", "--faceset", "--frames", "--color-transfer", "bit-identical"):
        assert needle in text


def test_swap_a_frame_range(small_shot, facesets, swap_model, tmp_path: Path, capsys) -> None:
    out = tmp_path / "swap"
    code = main(["swap", str(small_shot / "plate" / "plate.####.exr"), "--model", str(swap_model[1]),
                 "--faceset", str(facesets[1]), "--out", str(out), "--frames", "1005-1006",
                 "--layers", "mask,raw", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "swapped 2 frame(s), 2 face(s)" in printed
    summary = json.loads((out / "swap_summary.1005-1006.json").read_text())
    assert summary["settings"]["layers"] == ["rgba", "mask", "raw"]


def test_user_errors_are_one_line(small_shot, swap_model, tmp_path: Path, capsys) -> None:
    plate = str(small_shot / "plate" / "plate.####.exr")
    code = main(["swap", plate, "--model", str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "missing.onnx" in err
    code = main(["swap", plate, "--model", str(swap_model[1]), "--out", str(tmp_path / "o"), "--blur", "-3"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("dfl-vfx swap: error: --blur -3")


def test_output_problems_are_refused_in_one_line_before_the_model_loads(small_shot, tmp_path: Path, capsys) -> None:
    """The model path does not exist: these messages prove the checks come before loading it."""
    plate = str(small_shot / "plate" / "plate.####.exr")
    model = str(tmp_path / "not-loaded.onnx")
    a_file = tmp_path / "swap"
    a_file.write_text("not a folder")
    code = main(["swap", plate, "--model", model, "--out", str(a_file)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith(f"dfl-vfx swap: error: --out {a_file} is a file, not a folder")
    code = main(["swap", plate, "--model", model, "--out", str(a_file / "below")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "is a file, so the folder cannot be made" in err

    png = tmp_path / "png"
    png.mkdir()
    write_image(png / "plate.1001.png", Image.from_array(np.full((32, 48, 3), 0.5, np.float32), fmt="uint8"))
    code = main(["swap", str(png / "plate.####.png"), "--model", model, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "--layers rgba,mask,face: the output frames (named like the plate) are PNG" in err
    assert err.endswith("or pass --layers rgba")
    assert not (tmp_path / "out").exists()


def test_serve_over_stdio_in_a_subprocess(swap_model) -> None:
    requests = [{"jsonrpc": "2.0", "id": 1, "method": "load", "params": {"model": str(swap_model[1])}},
                {"jsonrpc": "2.0", "id": 2, "method": "shutdown"}]
    text = "".join(json.dumps(r) + "\n" for r in requests)
    done = subprocess.run([sys.executable, "-m", "dfl_vfx.cli.main", "serve"], input=text, capture_output=True,
                          text=True, timeout=120)
    replies = {reply["id"]: reply for reply in map(json.loads, done.stdout.splitlines())}
    assert done.returncode == 0
    assert replies[1]["result"]["resolution"] == 64
    assert replies[2] == {"jsonrpc": "2.0", "id": 2, "result": {"bye": True}}


def test_sigterm_mid_shot_leaves_whole_frames_and_the_rerun_finishes(small_shot, facesets, swap_model,
                                                                      tmp_path: Path) -> None:
    import signal
    import time

    out = tmp_path / "swap"
    command = [sys.executable, "-m", "dfl_vfx.cli.main", "swap", str(small_shot / "plate" / "plate.####.exr"),
               "--model", str(swap_model[1]), "--faceset", str(facesets[1]), "--out", str(out), "--jobs", "1",
               "--no-progress", "--color-transfer", "idt"]  # idt: slow enough per frame to stop mid-shot
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(out.glob("plate.*.exr"))) < 2:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    written = sorted(out.glob("plate.*.exr"))
    assert proc.returncode == 130 and "rerun the same command to resume" in err
    assert 2 <= len(written) < 12
    files = [*out.iterdir(), *(out / "layers").iterdir()]  # the frames and their layers files
    assert not [p for p in files if p.is_dir() and p.name != "layers"]
    assert not [p for p in files if p.is_file() and (p.name.startswith(".") or p.suffix not in (".exr", ".json"))]
    assert sorted(p.name for p in (out / "layers").iterdir()) == [p.name for p in written]  # no temporary files
    summary = json.loads((out / "swap_summary.json").read_text())
    assert len(summary["frames"]["done"]) == len(written) and summary["status"] == "interrupted"
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    resumed = json.loads((out / "swap_summary.json").read_text())
    assert resumed["status"] == "complete"
    assert resumed["frames"]["skipped"] == summary["frames"]["done"]
    assert len(resumed["frames"]["done"]) == 12 - len(written)


def test_bad_settings_name_the_option_before_any_work(small_shot, swap_model, tmp_path: Path, capsys) -> None:
    """The schema checks every merge/model/output value; the CLI words its error with the option's flag."""
    plate = str(small_shot / "plate" / "plate.####.exr")
    cases = [
        (["--face-scale", "60"], "--face-scale 60: out of range; use -50..50 (percent)"),
        (["--erode", "wide"], "--erode wide: must be a number"),
        (["--color-transfer", "nope"], "--color-transfer nope: unknown; use none, rct"),
        (["--layers", "rgba,depth"], "--layers rgba,depth: unknown 'depth'"),
        (["--batch", "0"], "--batch 0: out of range; use 1..1024"),
        (["--mask-mode", "hull*nose"], "--mask-mode hull*nose: unknown mask 'nose'"),
    ]
    for extra, expected in cases:
        code = main(["swap", plate, "--model", str(swap_model[1]), "--out", str(tmp_path / "o"), *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2, extra
        assert err.startswith(f"dfl-vfx swap: error: {expected}"), err
        assert "\n" not in err
    assert not (tmp_path / "o").exists()


def test_an_unwritable_out_is_one_line_before_any_work(small_shot, swap_model, read_only_dir: Path, capsys) -> None:
    plate = str(small_shot / "plate" / "plate.####.exr")
    code = main(["swap", plate, "--model", str(swap_model[1]), "--out", str(read_only_dir / "swap")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err == (f"dfl-vfx swap: error: --out {read_only_dir / 'swap'}: cannot write in {read_only_dir} "
                   "(Permission denied); choose a folder you can write to or fix its permissions")
