"""Shot evaluation on a no-op "swap": the demo plate written as swap output with headers from the dst alignments."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.eval.shot import FACES_ATTRIBUTE, _dst_model_face, _read_frame, _Spaces, evaluate_shot, swap_faces
from dfl_vfx.face.align import aligned_quad, get_transform_mat
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.identity import SAME_PERSON_DISTANCE
from dfl_vfx.faceset import Faceset
from dfl_vfx.faceset.alignments import read_alignments
from dfl_vfx.io.image import read_image, write_image
from dfl_vfx.io.sequence import open_sequence
from trainer.config import load_config
from trainer.loop import train

FRAMES = (1001, 1002, 1003)


def write_noop_swap(plate_dir: Path, dst_faceset: Path, out: Path, size: int = 64, blank_faces: bool = False) -> None:
    """Plate frames copied as swap output, each face listed in the header as `dfl-vfx swap` writes it."""
    tracks = read_alignments(dst_faceset).tracks
    for frame in FRAMES:
        image = read_image(plate_dir / f"plate.{frame}.exr")
        faces = []
        for tracked in tracks[frame]:
            landmarks = tracked.landmarks_array()
            matrix = get_transform_mat(landmarks, size, FaceType.FULL)
            quad = aligned_quad(matrix, size)
            faces.append({"index": tracked.face_index, "track_id": tracked.track_id, "landmarks": landmarks.tolist(),
                          "matrix": matrix.tolist(), "resolution": size, "face_type": "f",
                          "bbox": [*np.floor(quad.min(axis=0)).tolist(), *np.ceil(quad.max(axis=0)).tolist()]})
            if blank_faces:  # a flat grey card over the face: nothing left to detect
                x0, y0 = (np.floor(landmarks.min(axis=0)) - (image.data_window.x, image.data_window.y)).astype(int)
                x1, y1 = (np.ceil(landmarks.max(axis=0)) - (image.data_window.x, image.data_window.y)).astype(int)
                image.pixels[y0 - 20 : y1 + 1, x0 : x1 + 1, :3] = 0.18
        image.metadata[FACES_ATTRIBUTE] = json.dumps(faces)
        write_image(out / f"plate.{frame}.exr", image)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(single_thread):
    """Every test here runs with one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def noop_swap(small_shot: Path, facesets: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("noop_swap")
    write_noop_swap(small_shot / "plate", facesets[1], out)
    return out


@pytest.fixture(scope="module")
def model_dir(facesets: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    tiny = {"archi": "df-ud", "resolution": 64, "face_type": "f", "ae_dims": 32, "e_dims": 16, "d_dims": 16,
            "d_mask_dims": 16}  # the root conftest's tiny_model (a function-scoped fixture)
    out = tmp_path_factory.mktemp("eval_model") / "model"
    src, dst = facesets
    train(load_config(None, {"src": str(src), "dst": str(dst), "model_dir": str(out), "batch_size": 2,
                             "preview_every": 0, "max_iters": 1, "model": tiny}), progress=False)
    return out


def test_noop_swap_reads_as_the_plate(noop_swap: Path, small_shot: Path, facesets: tuple[Path, Path]) -> None:
    report = evaluate_shot(str(noop_swap), str(facesets[0]), plate=str(small_shot / "plate"), progress=False)
    assert (report.frames, report.faces, report.src_faces, report.missed) == (3, 3, 4, [])
    # The swap is the plate, so it is exactly as far from the src identity as the plate faces are.
    assert report.identity_swap_to_src == pytest.approx(report.identity_dst_to_src, abs=1e-9)
    assert report.identity_dst_to_src > SAME_PERSON_DISTANCE  # astronaut vs Grace Hopper: measured 0.67
    # Re-detection on the same pixels differs from extraction's landmarks only by detector jitter.
    assert 0.0 < report.landmarks < 3.0  # measured 0.87 px at 256
    assert 0.0 <= report.pose < 2.0  # measured 0.41 degrees
    assert report.ssim_src is None and report.ssim_dst is None


def test_without_plate_the_baseline_is_omitted(noop_swap: Path, facesets: tuple[Path, Path]) -> None:
    report = evaluate_shot(str(noop_swap / "plate.####.exr"), str(facesets[0]), frames="1002", progress=False)
    assert (report.frames, report.faces) == (1, 1)
    assert report.identity_dst_to_src is None and report.identity_swap_to_src > SAME_PERSON_DISTANCE


def test_max_faces_spreads_the_sample(noop_swap: Path, facesets: tuple[Path, Path]) -> None:
    report = evaluate_shot(str(noop_swap), str(facesets[0]), max_faces=2, progress=False)
    assert (report.frames, report.faces, report.src_faces) == (2, 2, 2)  # first and last of 3 frames, of 4 src faces
    with pytest.raises(DflError, match="--max-faces 0"):
        evaluate_shot(str(noop_swap), str(facesets[0]), max_faces=0)


def test_reconstruction_ssim_with_a_model(noop_swap: Path, small_shot: Path, facesets: tuple[Path, Path],
                                          model_dir: Path) -> None:
    report = evaluate_shot(str(noop_swap), str(facesets[0]), model=str(model_dir), plate=str(small_shot / "plate"),
                           frames="1001", progress=False)
    assert 0.0 < report.ssim_src <= 1.0
    assert 0.0 < report.ssim_dst <= 1.0
    assert report.faces == 1
    without_plate = evaluate_shot(str(noop_swap), str(facesets[0]), model=str(model_dir), frames="1001",
                                  progress=False)
    assert without_plate.ssim_src == pytest.approx(report.ssim_src, abs=1e-6)  # same src faces, same model
    assert without_plate.ssim_dst is None


def test_dst_faces_are_cut_as_extraction_cut_them(noop_swap: Path, small_shot: Path,
                                                  facesets: tuple[Path, Path]) -> None:
    dst = Faceset.open(facesets[1])
    for face in swap_faces(open_sequence(str(noop_swap))):
        frame = _read_frame(small_shot / "plate" / f"plate.{face.frame}.exr", None, _Spaces())
        crop, mask = _dst_model_face(frame, face, 64)
        stored = dst.read(f"plate.{face.frame}_0")
        assert np.abs(crop - stored).max() < 2e-3  # the faceset is half EXR
        assert 0.3 < mask.mean() < 0.7


def test_faces_that_cannot_be_found_again_are_missed(small_shot: Path, facesets: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    write_noop_swap(small_shot / "plate", facesets[1], tmp_path, blank_faces=True)
    report = evaluate_shot(str(tmp_path), str(facesets[0]), progress=False)
    assert report.missed == list(FRAMES)
    assert report.landmarks is None and report.pose is None
    assert report.identity_swap_to_src > 0.0  # still measured, with the header's landmarks


def test_user_errors(noop_swap: Path, small_shot: Path, facesets: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(DflError, match="swap output .*nothing: no such folder or file"):
        evaluate_shot(str(tmp_path / "nothing"), str(facesets[0]))
    with pytest.raises(DflError, match="--plate .*nothing: no such folder or file"):
        evaluate_shot(str(noop_swap), str(facesets[0]), plate=str(tmp_path / "nothing"))
    with pytest.raises(DflError, match="faceset.json"):
        evaluate_shot(str(noop_swap), str(tmp_path))
    with pytest.raises(DflError, match=f"no frame carries a {FACES_ATTRIBUTE} header"):
        evaluate_shot(str(small_shot / "plate"), str(facesets[0]), frames="1001")
    with pytest.raises(DflError, match="no checkpoint here"):
        evaluate_shot(str(noop_swap), str(facesets[0]), model=str(tmp_path))


def test_progress_in_a_log_is_lines_not_bars(noop_swap: Path, facesets: tuple[Path, Path], caplog) -> None:
    """Off a terminal (a farm log, `make demo > log`) progress is logged as lines, without carriage returns."""
    caplog.set_level(logging.INFO, logger="dfl_vfx.progress")
    evaluate_shot(str(noop_swap), str(facesets[0]), max_faces=2)
    lines = [record.getMessage() for record in caplog.records if record.name == "dfl_vfx.progress"]
    assert any(line.startswith("src faces: 2/2 faces (100%)") for line in lines), lines
    assert any(line.startswith("frames: 2/2 frames (100%)") for line in lines), lines
    caplog.clear()
    evaluate_shot(str(noop_swap), str(facesets[0]), max_faces=2, progress=False)
    assert not [record for record in caplog.records if record.name == "dfl_vfx.progress"]
