"""`dfl-vfx train` and `dfl-vfx export` from the command line, and the standalone `trainer` command."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from dfl_vfx.cli.main import main
from dfl_vfx.export.onnx_export import read_metadata


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_then_export_onnx_and_dfm(facesets, tiny_model: dict, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    src, dst = facesets
    model_dir = tmp_path / "model"
    code, out, err = run(capsys, "train", "--src", str(src), "--dst", str(dst), "--model-dir", str(model_dir),
                         "--batch-size", "2", "--max-iters", "2", "--no-progress",
                         *[f"--set=model.{k}={v}" for k, v in tiny_model.items()])
    assert code == 0, err
    assert "stopped (max_iters) at iteration 2" in out
    code, out, err = run(capsys, "export", str(model_dir), "--out", str(tmp_path / "m.onnx"))
    assert code == 0, err
    assert "checked with ONNX Runtime: max difference to PyTorch" in out
    meta = read_metadata(tmp_path / "m.onnx")
    assert meta["resolution"] == "64" and meta["face_type"] == "full_face" and meta["iterations"] == "2"
    assert meta["kind"] == "dfl_vfx.swap" and meta["color_space"] == "ACEScct"
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    rgb, mask_src, mask_dst = session.run(None, {"face": np.random.rand(3, 3, 64, 64).astype(np.float32)})
    assert rgb.shape == (3, 3, 64, 64) and mask_src.shape == mask_dst.shape == (3, 1, 64, 64)
    code, out, err = run(capsys, "export", str(model_dir), "--out", str(tmp_path / "m.dfm"), "--dfm")
    assert code == 0, err
    dfm = ort.InferenceSession(str(tmp_path / "m.dfm"), providers=["CPUExecutionProvider"])
    assert [i.name for i in dfm.get_inputs()] == ["in_face:0"]
    assert [o.name for o in dfm.get_outputs()] == ["out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0"]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["train", "--src", "a", "--dst", "b", "--model-dir", "m", "--set", "batchsize=2"], "batchsize"),
        (["train", "--src", "a", "--dst", "b", "--model-dir", "m", "--archi", "gan-ud"], "archi"),
        (["train", "--src", "{tmp}", "--dst", "{tmp}", "--model-dir", "{tmp}/m"], "faceset.json"),
        (["train", "--dst", "b", "--model-dir", "m"], "--src and --dst"),
        (["export", "{tmp}/nothing", "--out", "{tmp}/x.onnx"], "no checkpoint here"),
    ],
)
def test_user_errors_are_one_line(argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture
                                  ) -> None:
    code, _, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err


def test_trainer_command_is_the_same_parser() -> None:
    exe = Path(sys.executable).parent / "trainer"
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "usage: dfl-vfx train" in result.stdout and "--model-dir" in result.stdout


@pytest.mark.parametrize(
    "out,flags,needle",
    [
        ("m.txt", [], "--out {tmp}/m.txt: unknown extension '.txt'; name the file .onnx (or .dfm with --dfm)"),
        ("m", [], "unknown extension '(none)'"),
        ("m.dfm", [], "--out {tmp}/m.dfm: a .dfm file is DeepFaceLive's contract; add --dfm, or name the file .onnx"),
        ("", [], "--out {tmp} is a folder; give a file name such as {tmp}/model.onnx"),
        ("taken/m.onnx", [], "--out {tmp}/taken is a file, not a folder"),
    ],
)
def test_export_refuses_an_output_swap_cannot_read_before_loading(
        out: str, flags: list[str], needle: str, swap_model: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "taken").write_text("a file")
    code, _, err = run(capsys, "export", str(swap_model[0]), "--out", str(tmp_path / out), *flags)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert needle.format(tmp=tmp_path) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # nothing written


def test_export_accepts_upper_case_extensions(swap_model: tuple[Path, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(capsys, "export", str(swap_model[0]), "--out", str(tmp_path / "M.ONNX"))
    assert code == 0, err
    assert read_metadata(tmp_path / "M.ONNX")["kind"] == "dfl_vfx.swap"
