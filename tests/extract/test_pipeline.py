"""Extraction end to end on the small demo shot: accuracy, colour path, resume, bad input, selection."""

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.color.ocio import WorkingSpace
from dfl_vfx.demo.shot import CARD_ROWS, DemoShotConfig, astronaut_srgb, card_to_plate_matrix
from dfl_vfx.errors import DflError
from dfl_vfx.extract.pipeline import ExtractOptions, extract, face_crop
from dfl_vfx.face.align import transform_points
from dfl_vfx.face.detect import create_backend, find_faces
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.smoothing import jitter
from dfl_vfx.faceset import Faceset
from dfl_vfx.io.image import Image, read_image, write_image

PLATE = "plate/plate.####.exr"


def _opts(**kw) -> ExtractOptions:
    base = dict(face_type="wf", size=128, select="largest", jobs=1, progress=False, encoding="exr")
    base.update(kw)
    return ExtractOptions(**base)


@functools.lru_cache(maxsize=1)
def _photo_landmarks() -> np.ndarray:
    return find_faces(astronaut_srgb(), create_backend("dlib", min_score=0.5))[0].landmarks


def _true_landmarks(frame: int, cfg: DemoShotConfig) -> np.ndarray:
    """Where the face really is: dlib landmarks on the source photo mapped by the shot's camera move."""
    mat = card_to_plate_matrix(frame - cfg.first_frame, cfg, (CARD_ROWS, 512, 3))
    return transform_points(_photo_landmarks(), mat) - cfg.overscan


@pytest.fixture(scope="module")
def extracted(small_shot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faces") / "dst"
    summary = extract(str(small_shot / PLATE), str(out), _opts(smooth=5))
    assert summary.faces_written == 12 and summary.tracks == 1 and not summary.skipped
    return out


def test_every_frame_gives_one_face_with_metadata(extracted: Path) -> None:
    fs = Faceset.open(extracted)
    records = fs.records()
    assert [r.name for r in records] == [f"plate.{f}_0.exr" for f in range(1001, 1013)]
    meta = records[0].meta
    assert meta.face_type == "whole_face" and meta.size == 128
    assert meta.colorspace == "ACEScct" and meta.plate_colorspace == "ACEScg"
    assert meta.source_frame == 1001 and meta.source_filename == "plate.1001.exr"
    assert meta.detector == "dlib" and meta.track_id == 0
    assert abs(np.degrees(meta.pose["yaw"])) < 15 and abs(np.degrees(meta.pose["roll"])) < 10
    # aligned landmarks are the source landmarks through the stored matrix
    np.testing.assert_allclose(
        transform_points(meta.source_landmarks_array(), meta.matrix()), meta.landmarks_array(), atol=1e-3
    )


def test_landmarks_match_ground_truth_of_the_camera_move(extracted: Path, small_shot_config: DemoShotConfig) -> None:
    errors = []
    for record in Faceset.open(extracted).records():
        truth = _true_landmarks(record.meta.source_frame, small_shot_config)
        errors.append(np.linalg.norm(record.meta.source_landmarks_array() - truth, axis=1).mean())
    face_width = np.ptp(_true_landmarks(1001, small_shot_config)[:, 0])
    # within a few % of the face width (the "truth" is dlib on the clean photo, itself ~1 px uncertain)
    assert np.mean(errors) < 0.03 * face_width and max(errors) < 0.05 * face_width, (errors, face_width)


def test_aligned_face_is_the_plate_in_the_working_space(small_shot: Path, extracted: Path) -> None:
    record = Faceset.open(extracted).records()[2]
    plate = read_image(small_shot / "plate" / "plate.1003.exr")
    direct, mat = face_crop(plate.rgb(), (plate.data_window.x, plate.data_window.y),
                            record.meta.source_landmarks_array(), 128, FaceType.WHOLE_FACE)
    np.testing.assert_allclose(mat, record.meta.matrix(), rtol=1e-5, atol=1e-4)
    stored = Faceset.open(extracted).read(record)  # ACEScct, half EXR
    linear = WorkingSpace("ACEScg").from_working(stored)
    rel = np.abs(linear - direct) / np.maximum(np.abs(direct), 0.02)
    assert np.percentile(rel, 99) < 5e-3  # half-float storage of log values


def test_smoothing_cuts_jitter_without_leaving_the_face(extracted: Path, small_shot_config: DemoShotConfig) -> None:
    data = json.loads((extracted / "alignments.json").read_text())
    frames = sorted(data["tracks"], key=int)
    smooth = np.array([data["tracks"][f][0]["landmarks"] for f in frames])
    raw = np.array([data["tracks"][f][0]["raw_landmarks"] for f in frames])
    truth = np.array([_true_landmarks(int(f), small_shot_config) for f in frames])
    assert jitter(smooth) < jitter(raw)
    assert np.linalg.norm(smooth - truth, axis=2).mean() <= np.linalg.norm(raw - truth, axis=2).mean() + 0.25


def test_rerun_resumes_and_rewrites_only_missing_faces(small_shot: Path, tmp_path: Path) -> None:
    out = tmp_path / "dst"
    extract(str(small_shot / PLATE), str(out), _opts(), frames="1001-1003")
    first = (out / "plate.1001_0.exr").stat().st_mtime_ns
    (out / "plate.1002_0.exr").unlink()
    again = extract(str(small_shot / PLATE), str(out), _opts(), frames="1001-1003")
    assert again.resumed_frames == 2 and again.faces_written == 1
    assert (out / "plate.1001_0.exr").stat().st_mtime_ns == first
    assert (out / "plate.1002_0.exr").is_file()
    saved = json.loads((out / "extract_summary.json").read_text())
    assert saved["status"] == "complete" and saved["faces_written"] == 1 and saved["resumed_frames"] == 2
    assert saved["detect"]["skipped"] == [1001, 1002, 1003] and saved["detect"]["done"] == []  # from the cache
    assert saved["align"]["skipped"] == [1001, 1003] and saved["align"]["done"] == [1002]


def test_png16_faceset_and_debug_frames(small_shot: Path, tmp_path: Path) -> None:
    summary = extract(str(small_shot / PLATE), str(tmp_path / "dst"), _opts(encoding="png16",
                      debug_dir=str(tmp_path / "debug")), frames="1001,1004")
    assert summary.faces_written == 2
    assert sorted(p.name for p in (tmp_path / "debug").iterdir()) == ["plate.1001.jpg", "plate.1004.jpg"]
    face = read_image(tmp_path / "dst" / "plate.1004_0.png")
    assert face.channel_formats == ["uint16"] * 3


def _broken_shot(small_shot: Path, root: Path) -> Path:
    """Copy of the plate with a missing frame, a truncated frame, a black frame, a NaN frame, a Z-only frame."""
    plate = root / "plate"
    shutil.copytree(small_shot / "plate", plate)
    (plate / "plate.1002.exr").unlink()
    data = (plate / "plate.1003.exr").read_bytes()
    (plate / "plate.1003.exr").write_bytes(data[: len(data) // 3])
    black = read_image(plate / "plate.1004.exr")
    black.pixels[...] = 0.0
    write_image(plate / "plate.1004.exr", black)
    nan = read_image(plate / "plate.1005.exr")
    nan.pixels[:10, :10, 0] = np.nan
    nan.pixels[10:12, :10, 1] = np.inf
    write_image(plate / "plate.1005.exr", nan)
    write_image(plate / "plate.1006.exr", Image.from_array(np.ones((8, 8), np.float32), channels=["Z"], fmt="float"))
    return plate


def test_bad_frames_are_reported_and_the_rest_extracted(small_shot: Path, tmp_path: Path) -> None:
    plate = _broken_shot(small_shot, tmp_path)
    summary = extract(str(plate / "plate.####.exr"), str(tmp_path / "dst"), _opts(), frames="1001-1006")
    assert summary.faces_written == 2  # 1001 and 1005 (NaN pixels are outside the face)
    reasons = {item["frame"]: item["reason"] for item in summary.skipped}
    assert set(reasons) == {1002, 1003, 1006}
    assert "file missing" in reasons[1002] and "plate.1002.exr" in reasons[1002]
    assert "plate.1003.exr" in reasons[1003] and "truncated" in reasons[1003]
    assert "no R, G, B channels" in reasons[1006]
    assert summary.frames_without_face == [1004]
    assert any("frame 1005" in w and "NaN/Inf" in w for w in summary.warnings)
    text = "\n".join(summary.lines())
    assert "no face in 1 frame(s): 1004" in text and "skipped frame 1003" in text
    # 1002 missing, 1003 truncated and 1006 without colour were never searched: "from 6 frame(s)" overstated it
    assert text.startswith(f"extracted 2 face(s) from 3 of 6 frame(s) into {tmp_path / 'dst'} ")
    assert json.loads((tmp_path / "dst" / "extract_summary.json").read_text())["frames_read"] == 3
    assert summary.detect.missing == {1002: reasons[1002]} and sorted(summary.detect.failed) == [1003, 1006]
    assert summary.align.done == [1001, 1005]
    # nothing half-written: every file in the faceset is a complete face
    fs = Faceset.open(tmp_path / "dst")
    assert sorted(r.meta.source_frame for r in fs.records()) == [1001, 1005]
    assert not [p for p in (tmp_path / "dst").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "options,match",
    [
        (dict(face_type="quarter"), "quarter"),
        (dict(colorspace="ACEScgg"), "unknown colorspace 'ACEScgg'"),
        (dict(size=8), "--size 8"),
        (dict(select="identity"), "--reference"),
        (dict(detector="s3fd"), "s3fd"),
        (dict(detector_options={"model": "yolo"}), "model"),
    ],
)
def test_bad_options_fail_before_any_work(small_shot: Path, tmp_path: Path, options: dict, match: str) -> None:
    with pytest.raises(DflError, match=match):
        extract(str(small_shot / PLATE), str(tmp_path / "dst"), _opts(**options))
    assert not (tmp_path / "dst").exists()


def test_identity_selection_keeps_only_the_reference_person(small_shot: Path, tmp_path: Path) -> None:
    same = tmp_path / "collins.png"
    other = tmp_path / "hopper.png"
    write_image(same, Image.from_array(astronaut_srgb() / 255.0, fmt="uint8"))
    shutil.copy(small_shot / "src" / "src.0001.png", other)
    kept = extract(str(small_shot / PLATE), str(tmp_path / "a"),
                   _opts(select="identity", reference=[str(same)]), frames="1001-1002")
    assert kept.faces_written == 2
    dropped = extract(str(small_shot / PLATE), str(tmp_path / "b"),
                      _opts(select="identity", reference=[str(other)]), frames="1001-1002")
    assert dropped.faces_written == 0 and dropped.frames_without_face == [1001, 1002]


def test_two_workers_give_the_same_faces_as_one(small_shot: Path, tmp_path: Path) -> None:
    extract(str(small_shot / PLATE), str(tmp_path / "one"), _opts(), frames="1001-1003")
    extract(str(small_shot / PLATE), str(tmp_path / "two"), _opts(jobs=2), frames="1001-1003")
    a, b = Faceset.open(tmp_path / "one"), Faceset.open(tmp_path / "two")
    for ra, rb in zip(a.records(), b.records(), strict=True):
        np.testing.assert_array_equal(a.read(ra), b.read(rb))
        assert ra.meta.source_landmarks == rb.meta.source_landmarks


def test_interrupted_detection_keeps_its_work_for_the_rerun(small_shot: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from dfl_vfx.extract import pipeline

    class Terminated(BaseException):
        """Stands in for KeyboardInterrupt (what SIGTERM becomes in the CLI), which pytest keeps for itself."""

    real = pipeline._detect_frame
    calls: list[int] = []
    summary_path = tmp_path / "dst" / "extract_summary.json"
    seen_at_1004: dict = {}

    def interrupted_at_1004(frame: int, path: str):
        calls.append(frame)
        if frame == 1004:
            seen_at_1004.update(json.loads(summary_path.read_text()))  # the summary as frames finish
            raise Terminated
        return real(frame, path)

    monkeypatch.setattr(pipeline, "_detect_frame", interrupted_at_1004)
    with pytest.raises(Terminated):
        extract(str(small_shot / PLATE), str(tmp_path / "dst"), _opts(), frames="1001-1006")
    cached = json.loads((tmp_path / "dst" / "alignments.json").read_text())
    assert sorted(cached["frames"], key=int) == ["1001", "1002", "1003"]
    assert not list((tmp_path / "dst").glob("*.exr"))  # interrupted before any face was written
    assert seen_at_1004["status"] == "running" and seen_at_1004["detect"]["done"] == [1001, 1002, 1003]
    stopped = json.loads(summary_path.read_text())
    assert stopped["status"] == "interrupted" and stopped["detect"]["status"] == "interrupted"
    assert stopped["detect"]["error"] == "Terminated" and stopped["detect"]["done"] == [1001, 1002, 1003]

    calls.clear()
    monkeypatch.setattr(pipeline, "_detect_frame", lambda frame, path: calls.append(frame) or real(frame, path))
    summary = extract(str(small_shot / PLATE), str(tmp_path / "dst"), _opts(), frames="1001-1006")
    assert calls == [1004, 1005, 1006]  # frames 1001-1003 came from the cache
    assert summary.faces_written == 6 and summary.status == "complete"
    assert summary.detect.skipped == [1001, 1002, 1003] and summary.detect.done == [1004, 1005, 1006]


def test_two_extractions_in_threads_of_one_process_keep_their_own_options(small_shot: Path, tmp_path: Path) -> None:
    # jobs=1 runs in the caller's thread; each extraction must use its own options and detector state.
    import threading

    results: dict[int, object] = {}

    def run(size: int) -> None:
        try:
            results[size] = extract(str(small_shot / PLATE), str(tmp_path / f"s{size}"), _opts(size=size),
                                    frames="1001-1006")
        except Exception as exc:  # reported below
            results[size] = exc

    threads = [threading.Thread(target=run, args=(size,)) for size in (64, 96)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for size in (64, 96):
        assert not isinstance(results[size], Exception), results[size]
        records = Faceset.open(tmp_path / f"s{size}").records()
        assert len(records) == 6 and {r.meta.size for r in records} == {size}


def test_a_malformed_alignments_cache_is_detected_again_and_rewritten(small_shot: Path, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    from dfl_vfx.faceset.alignments import read_alignments

    out = tmp_path / "dst"
    out.mkdir()
    (out / "alignments.json").write_text('{"format": "dfl_vfx.alignments", "version": 1, "frames": {"1001": 7}}')
    with caplog.at_level("WARNING", logger="dfl_vfx.extract.pipeline"):
        summary = extract(str(small_shot / PLATE), str(out), _opts(), frames="1001-1002")
    assert summary.faces_written == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "alignments.json: malformed alignments at frame 1001" in warnings[0]
    assert warnings[0].endswith("detecting every frame again")
    assert sorted(read_alignments(out).tracks) == [1001, 1002]
