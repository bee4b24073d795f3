"""`dfl-vfx eval`: help, one-line errors, printed metrics and the JSON report."""

import json
from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.cli import eval_cmd
from dfl_vfx.cli import main as cli_main
from dfl_vfx.extract.pipeline import ALIGNMENTS_FILE
from dfl_vfx.face.align import get_transform_mat
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.io.image import read_image, write_image


@pytest.fixture(autouse=True)
def eval_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run through the real `dfl-vfx` entry point with `eval` registered, as the command registry does."""
    monkeypatch.setitem(cli_main.COMMANDS, "eval", eval_cmd)


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def noop_swap(small_shot: Path, facesets: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two plate frames written as swap output, headers listing the dst faces (a swap that changed nothing)."""
    out = tmp_path_factory.mktemp("cli_noop_swap")
    tracks = json.loads((facesets[1] / ALIGNMENTS_FILE).read_text())["tracks"]
    for frame in (1001, 1002):
        image = read_image(small_shot / "plate" / f"plate.{frame}.exr")
        faces = [{"index": job["face_index"], "track_id": job["track_id"], "landmarks": job["landmarks"],
                  "matrix": get_transform_mat(np.asarray(job["landmarks"]), 64, FaceType.FULL).tolist(),
                  "resolution": 64, "face_type": "f", "bbox": job["rect"]} for job in tracks[str(frame)]]
        image.metadata["dfl_vfx:faces"] = json.dumps(faces)
        write_image(out / f"plate.{frame}.exr", image)
    return out


def test_help_explains_metrics_and_paper_numbers(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["eval", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--src-faceset", "--model", "--plate", "--json", "examples:", "identity swap->src", "landmarks ↓",
                   "pose ↓", "DF    SSIM 0.73", "LIAE  SSIM 0.76"):
        assert needle in text


@pytest.mark.parametrize("which", ["swapped", "faceset"])
def test_missing_folder_is_one_line(which: str, noop_swap: Path, facesets: tuple[Path, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    swapped = str(tmp_path / "nothing") if which == "swapped" else str(noop_swap)
    faceset = str(tmp_path / "nothing") if which == "faceset" else str(facesets[0])
    code, out, err = run(capsys, "eval", swapped, "--src-faceset", faceset)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "nothing: no such folder" in err and "Traceback" not in err


def test_eval_prints_metrics_and_writes_json(noop_swap: Path, small_shot: Path, facesets: tuple[Path, Path],
                                             tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "reports" / "eval.json"
    code, out, err = run(capsys, "eval", str(noop_swap), "--src-faceset", str(facesets[0]),
                         "--plate", str(small_shot / "plate"), "--json", str(target), "--no-progress")
    assert code == 0, err
    assert "evaluated 2 face(s) in 2 frame(s) against 4 src face(s)" in out
    for name in ("SSIM src reconstruction", "identity swap->src", "identity dst->src", "landmarks", "pose"):
        assert name in out
    assert "(needs --model)" in out and f"wrote {target}" in out
    data = json.loads(target.read_text())
    assert data["faces"] == 2 and data["missed"] == [] and data["ssim_src"] is None
    assert data["identity_swap_to_src"] == pytest.approx(data["identity_dst_to_src"], abs=1e-9)
    assert 0.0 < data["landmarks"] < 3.0 and 0.0 <= data["pose"] < 2.0
    assert not list(target.parent.glob(".*"))  # written atomically: no temporary file left
