"""DeepFaceLab aligned JPEGs: APP15 metadata read safely, malicious pickles refused, import into a faceset."""

import builtins
import math
import os
import pickle
import re

import cv2
import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.align import transform_points
from dfl_vfx.face.pose import estimate_pitch_yaw_roll
from dfl_vfx.faceset.dfljpg import import_dfl_faceset, jpeg_segments, read_dfl_metadata
from dfl_vfx.faceset.faceset import Faceset


class _RunsShellCommand:
    """Pickles to os.system(command): executing it would create the sentinel file."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Evaluates:
    """Pickles to builtins.eval(expression)."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def __reduce__(self):
        return (builtins.eval, (self.expression,))


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_read_metadata_round_trips_arrays(tmp_path, kit, real_faces):
    face = real_faces["astronaut"]
    meta = kit.dfl_metadata(face)
    path = _write(tmp_path / "00001_0.jpg", kit.jpeg_with_app15(face.aligned, kit.dfl_pickle(meta)))
    back = read_dfl_metadata(path)
    assert back.keys() == meta.keys()
    for key in ("landmarks", "source_landmarks", "image_to_face_mat", "source_rect"):
        assert back[key].dtype == meta[key].dtype
        np.testing.assert_array_equal(back[key], meta[key])
    assert back["face_type"] == "whole_face" and back["source_filename"] == "00001.png"
    np.testing.assert_array_equal(back["seg_ie_polys"][0]["pts"], meta["seg_ie_polys"][0]["pts"])
    # the pixels still decode: the APP15 segment sits between SOI and the rest of the JPEG
    assert cv2.imread(str(path)).shape == (kit.SIZE, kit.SIZE, 3)


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_numpy_pickles_of_every_protocol_load(tmp_path, kit, protocol):
    meta = {"landmarks": np.arange(136, dtype=np.float32).reshape(68, 2), "scale": np.float64(0.5), "ids": {1, 2}}
    jpeg = kit.jpeg_with_app15(kit.astronaut_crop(32), pickle.dumps(meta, protocol=protocol))
    back = read_dfl_metadata(_write(tmp_path / "a.jpg", jpeg))
    np.testing.assert_array_equal(back["landmarks"], meta["landmarks"])
    assert back["scale"] == 0.5 and back["ids"] == {1, 2}


def test_numpy1_module_names_load(tmp_path, kit):
    """DeepFaceLab ran numpy 1, whose pickles name numpy.core.multiarray."""
    payload = pickle.dumps({"m": np.eye(2, 3)}, protocol=3)
    assert b"numpy._core.multiarray" in payload
    payload = payload.replace(b"numpy._core.", b"numpy.core.")
    back = read_dfl_metadata(_write(tmp_path / "a.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), payload)))
    np.testing.assert_array_equal(back["m"], np.eye(2, 3))


def test_plain_jpeg_has_no_metadata(tmp_path, kit):
    assert read_dfl_metadata(_write(tmp_path / "a.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), None))) is None


def test_segment_walk_stops_at_scan_data(kit):
    jpeg = kit.jpeg_with_app15(kit.astronaut_crop(32), b"payload")
    segments = jpeg_segments(jpeg, "a.jpg")
    assert segments[0] == (0xEF, b"payload")
    assert 0xDB in [marker for marker, _ in segments]  # quantisation tables come before SOS


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n", "not a JPEG file"),
        (b"\xff\xd8\xff\xef\x00\x40abc", "overruns the file"),
        (b"\xff\xd8\x12\x34", "expected a marker"),
    ],
)
def test_corrupt_files_are_dfl_errors(tmp_path, data, message):
    with pytest.raises(DflError, match=message):
        read_dfl_metadata(_write(tmp_path / "bad.jpg", data))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path, kit):
    sentinel = tmp_path / "pwned"
    payload = pickle.dumps({"face_type": "whole_face", "x": _RunsShellCommand(f"touch {sentinel}")}, protocol=3)
    assert b"system" in payload  # the payload really calls the shell when unpickled naively
    path = _write(tmp_path / "evil_0.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), payload))
    with pytest.raises(
        DflError,
        match=rf"^{path}: refused to load DeepFaceLab metadata: it references (posix|os)\.system, "
        "which is not plain data$",
    ):
        read_dfl_metadata(path)
    assert not sentinel.exists()


def test_eval_payload_is_refused(tmp_path, kit):
    sentinel = tmp_path / "pwned"
    code = f"open({str(sentinel)!r}, 'w').close()"
    payload = pickle.dumps([_Evaluates(code)], protocol=4)
    path = _write(tmp_path / "evil.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), payload))
    with pytest.raises(DflError, match=r"it references builtins\.eval, which is not plain data"):
        read_dfl_metadata(path)
    assert not sentinel.exists()


def test_persistent_ids_are_refused(tmp_path, kit):
    import io

    class _WithPersistentId(pickle.Pickler):
        def persistent_id(self, obj):
            return "external" if obj == "ref" else None

    buffer = io.BytesIO()
    _WithPersistentId(buffer, protocol=3).dump({"a": "ref"})
    path = _write(tmp_path / "p.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), buffer.getvalue()))
    with pytest.raises(DflError, match="refused to load DeepFaceLab metadata: it uses a persistent id"):
        read_dfl_metadata(path)


def test_import_dfl_faceset(tmp_path, kit, real_faces):
    src = tmp_path / "aligned"
    src.mkdir()
    astro, hopper = real_faces["astronaut"], real_faces["hopper"]
    sentinel = tmp_path / "pwned"
    files = {
        "00001_0.jpg": kit.jpeg_with_app15(astro.aligned, kit.dfl_pickle(kit.dfl_metadata(astro))),
        "00002_0.jpg": kit.jpeg_with_app15(
            hopper.aligned, kit.dfl_pickle(kit.dfl_metadata(hopper, source_filename="00002.png"))
        ),
        "00003_0.jpg": kit.jpeg_with_app15(
            hopper.aligned, kit.dfl_pickle(kit.dfl_metadata(hopper, "full_face", "00003.png"))
        ),
        "00004_0.jpg": kit.jpeg_with_app15(astro.aligned, None),
        "00005_0.jpg": kit.jpeg_with_app15(
            astro.aligned, pickle.dumps({"face_type": "whole_face", "x": _RunsShellCommand(f"touch {sentinel}")})
        ),
    }
    for name, data in files.items():
        _write(src / name, data)

    report = import_dfl_faceset(src, tmp_path / "faceset")

    faceset = Faceset.open(tmp_path / "faceset")
    assert (faceset.info.face_type, faceset.info.size, faceset.info.encoding) == ("whole_face", kit.SIZE, "png16")
    assert report.imported == [faceset.root / "00001_0.png", faceset.root / "00002_0.png"]
    skipped = dict(report.skipped)
    assert skipped.keys() == {"00003_0.jpg", "00004_0.jpg", "00005_0.jpg"}
    assert skipped["00003_0.jpg"] == "face type full_face, the faceset is whole_face"
    assert "no DeepFaceLab metadata" in skipped["00004_0.jpg"]
    refused = r"00005_0.jpg: refused to load DeepFaceLab metadata: it references (posix|os)\.system"
    assert re.search(refused, skipped["00005_0.jpg"])
    assert not sentinel.exists()

    record = faceset.records()[0]
    meta = record.meta
    assert (meta.source_filename, meta.source_frame, meta.face_index) == ("00001.png", 1, 0)
    assert meta.plate_colorspace == "sRGB Encoded Rec.709 (sRGB)" and meta.colorspace == "ACEScct"
    np.testing.assert_allclose(meta.landmarks_array(), astro.landmarks, atol=1e-4)  # stored as float32 by DFL
    np.testing.assert_allclose(meta.source_landmarks_array(), astro.source_landmarks, atol=1e-4)
    np.testing.assert_allclose(meta.matrix(), astro.mat, rtol=1e-6, atol=1e-4)
    assert meta.source_rect == [float(v) for v in np.array(astro.source_rect, dtype=np.int32)]
    expected_pose = estimate_pitch_yaw_roll(meta.landmarks_array(), kit.SIZE)
    assert [meta.pose[k] for k in ("pitch", "yaw", "roll")] == pytest.approx(expected_pose, abs=1e-9)
    assert meta.extra["seg_ie_polys"] == [{"type": 1, "pts": [[10.0, 10.0], [100.0, 12.0], [50.0, 90.0]]}]

    # pixels: the JPEG's sRGB values converted to ACEScct; back to sRGB they match the decoded JPEG
    decoded = cv2.cvtColor(cv2.imread(str(src / "00001_0.jpg")), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    working = faceset.read(record)
    assert 0.05 < working.mean() < 0.6  # log-encoded, not the sRGB values themselves
    np.testing.assert_allclose(kit.working_to_srgb(working), decoded, atol=2e-4)


def test_import_resizes_faces_and_scales_geometry(tmp_path, kit, real_faces):
    src = tmp_path / "aligned"
    src.mkdir()
    astro = real_faces["astronaut"]
    _write(src / "00001_0.jpg", kit.jpeg_with_app15(astro.aligned, kit.dfl_pickle(kit.dfl_metadata(astro))))
    report = import_dfl_faceset(src, tmp_path / "faceset", size=64)
    assert report.skipped == []
    faceset = Faceset.open(tmp_path / "faceset")
    [record] = faceset.records()
    meta = record.meta
    assert faceset.info.size == 64 and meta.size == 64
    # the scaled matrix still takes the frame landmarks onto the scaled aligned landmarks
    mapped = transform_points(meta.source_landmarks_array(), meta.matrix())
    np.testing.assert_allclose(mapped, meta.landmarks, atol=1e-3)
    scale = 64 / kit.SIZE
    np.testing.assert_allclose(meta.landmarks_array(), (astro.landmarks + 0.5) * scale - 0.5, atol=1e-4)
    np.testing.assert_allclose(meta.extra["seg_ie_polys"][0]["pts"][0], [(10.5) * scale - 0.5] * 2)
    # the resized face is the frame warped with the scaled matrix (up to JPEG and resampling differences)
    rewarped = cv2.warpAffine(astro.frame_rgb.astype(np.float32) / 255, meta.matrix(), (64, 64), flags=cv2.INTER_AREA)
    srgb = kit.working_to_srgb(faceset.read(record))
    assert np.abs(srgb - rewarped).mean() < 0.02
    assert math.isfinite(meta.pose["yaw"])


def test_import_needs_a_directory(tmp_path):
    with pytest.raises(DflError, match="not a directory of DeepFaceLab aligned faces"):
        import_dfl_faceset(tmp_path / "missing", tmp_path / "out")


def test_import_with_nothing_importable_creates_no_faceset(tmp_path, kit):
    src = tmp_path / "aligned"
    src.mkdir()
    _write(src / "a.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), None))
    report = import_dfl_faceset(src, tmp_path / "out")
    assert report.imported == [] and [name for name, _ in report.skipped] == ["a.jpg"]
    assert not (tmp_path / "out").exists()


def test_renamed_dfl_files_get_the_next_free_face_index(tmp_path, kit, real_faces):
    """DFL's own sort renames aligned files (00000.jpg, ...): the index comes from what is free."""
    src = tmp_path / "aligned"
    src.mkdir()
    astro = real_faces["astronaut"]
    payload = kit.dfl_pickle(kit.dfl_metadata(astro, source_filename="plate_0042.png"))
    for name in ("00000.jpg", "00001.jpg"):
        _write(src / name, kit.jpeg_with_app15(astro.aligned, payload))
    report = import_dfl_faceset(src, tmp_path / "faceset")
    assert [p.name for p in report.imported] == ["plate_0042_0.png", "plate_0042_1.png"]
    records = Faceset.open(tmp_path / "faceset").records()
    assert [(r.meta.source_frame, r.meta.face_index) for r in records] == [(42, 0), (42, 1)]
    assert [r.meta.extra["dfl_aligned_file"] for r in records] == ["00000.jpg", "00001.jpg"]
