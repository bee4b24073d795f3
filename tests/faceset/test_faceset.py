"""Faceset on disk: create/open, add/read round trips for png16 and exr with metadata in the header."""

import json
import logging

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.faceset.faceset import Faceset, FacesetInfo, face_file_name
from dfl_vfx.faceset.metadata import FACE_ATTRIBUTE
from dfl_vfx.io.image import Image, read_header, write_image

# 16-bit PNG stores round(v * 65535): the error is at most half a step (plus float32 rounding of v).
PNG16_BOUND = 0.5 / 65535 + 1e-7
# Half floats carry 11 significant bits: relative rounding error at most 2**-11.
HALF_RELATIVE = 2.0**-11


def test_create_writes_faceset_json(tmp_path):
    faceset = Faceset.create(tmp_path / "fs", face_type="wf", size=128)
    data = json.loads((tmp_path / "fs" / "faceset.json").read_text())
    assert data == {
        "format": "dfl_vfx.faceset",
        "version": 1,
        "face_type": "whole_face",
        "size": 128,
        "colorspace": "ACEScct",
        "encoding": "png16",
        "created_by": data["created_by"],
    }
    assert data["created_by"].startswith("dfl_vfx ")
    assert Faceset.open(tmp_path / "fs").info == faceset.info
    assert len(faceset) == 0


@pytest.mark.parametrize("encoding", ["png16", "exr"])
def test_add_records_read_round_trip(tmp_path, kit, encoding):
    faceset = Faceset.create(tmp_path / "fs", face_type="whole_face", size=kit.SIZE, encoding=encoding)
    pixels = kit.srgb_to_working(kit.astronaut_crop())
    meta = kit.make_meta()
    name = faceset.name_for(meta.source_filename, meta.face_index)
    assert name == f"plate.1001_0{'.png' if encoding == 'png16' else '.exr'}"
    path = faceset.add(name, pixels, meta)
    assert path == tmp_path / "fs" / name and faceset.has(name)

    header = read_header(path)
    assert header.channel_formats == (["uint16"] * 3 if encoding == "png16" else ["half"] * 3)
    assert json.loads(header.metadata[FACE_ATTRIBUTE]) == json.loads(meta.to_json())

    reopened = Faceset.open(tmp_path / "fs")
    [record] = reopened.records()
    assert record.path == path and record.name == name
    assert record.meta == meta
    back = reopened.read(record)
    assert back.dtype == np.float32 and back.shape == (kit.SIZE, kit.SIZE, 3)
    error = np.abs(back - pixels)
    if encoding == "png16":
        assert error.max() <= PNG16_BOUND
    else:
        assert np.all(error <= np.abs(pixels) * HALF_RELATIVE + 1e-7)
    np.testing.assert_array_equal(reopened.read(name), back)


def test_exr_keeps_values_outside_unit_range_and_png16_clamps(tmp_path, kit):
    pixels = np.full((kit.SIZE, kit.SIZE, 3), 0.5, np.float32)
    pixels[0, 0] = [1.4, -0.05, 0.0]
    for encoding, expected in (("exr", [1.4, -0.05, 0.0]), ("png16", [1.0, 0.0, 0.0])):
        faceset = Faceset.create(tmp_path / encoding, face_type="wf", size=kit.SIZE, encoding=encoding)
        faceset.add("a_0", pixels, kit.make_meta())
        np.testing.assert_allclose(faceset.read("a_0" + faceset.info.suffix)[0, 0], expected, atol=1e-3)


def test_reopening_with_other_settings_is_refused(tmp_path):
    Faceset.create(tmp_path, face_type="whole_face", size=256)
    assert Faceset.create(tmp_path, face_type="wf", size=256).info.size == 256
    with pytest.raises(DflError, match=r"face_type 'whole_face', this run wants 'full_face'; use a new directory"):
        Faceset.create(tmp_path, face_type="full_face", size=256)
    with pytest.raises(DflError, match=r"size 256, this run wants 512"):
        Faceset.create(tmp_path, face_type="wf", size=512)
    with pytest.raises(DflError, match=r"encoding 'png16', this run wants 'exr'"):
        Faceset.create(tmp_path, face_type="wf", size=256, encoding="exr")
    with pytest.raises(DflError, match="already a faceset"):
        Faceset.create(tmp_path, face_type="wf", size=256, exist_ok=False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"face_type": "mark_only", "size": 128}, "has no aligned image"),
        ({"face_type": "bogus", "size": 128}, "unknown face type"),
        ({"face_type": "wf", "size": 4}, "too small"),
        ({"face_type": "wf", "size": 128, "encoding": "jpg"}, "encoding 'jpg' is unknown"),
        ({"face_type": "wf", "size": 128, "colorspace": "NotASpace"}, "unknown colorspace"),
    ],
)
def test_create_rejects_bad_settings(tmp_path, options, message):
    with pytest.raises(DflError, match=message):
        Faceset.create(tmp_path, **options)


def test_open_errors_name_the_file(tmp_path):
    with pytest.raises(DflError, match=rf"{tmp_path}/faceset.json: not found"):
        Faceset.open(tmp_path)
    (tmp_path / "faceset.json").write_text("{broken")
    with pytest.raises(DflError, match=rf"{tmp_path}/faceset.json: not valid JSON"):
        Faceset.open(tmp_path)
    (tmp_path / "faceset.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(DflError, match="not a dfl_vfx faceset description"):
        Faceset.open(tmp_path)
    info = json.loads(FacesetInfo(face_type="whole_face", size=64).to_json())
    (tmp_path / "faceset.json").write_text(json.dumps({**info, "version": 99}))
    with pytest.raises(DflError, match="version 99 is not supported"):
        Faceset.open(tmp_path)


def test_add_checks_size_and_metadata(tmp_path, kit):
    faceset = Faceset.create(tmp_path, face_type="wf", size=kit.SIZE)
    good = np.zeros((kit.SIZE, kit.SIZE, 3), np.float32)
    with pytest.raises(DflError, match=r"a_0.png: face image is \(64, 64, 3\), this faceset needs \(128, 128, 3\)"):
        faceset.add("a_0.png", np.zeros((64, 64, 3), np.float32), kit.make_meta())
    with pytest.raises(DflError, match="metadata face type 'full_face' does not match the faceset's 'whole_face'"):
        faceset.add("a_0.png", good, kit.make_meta(face_type="full_face"))
    with pytest.raises(DflError, match="NaN or infinite"):
        faceset.add("a_0.png", np.full_like(good, np.nan), kit.make_meta())
    with pytest.raises(DflError, match=r"stores \.png faces"):
        faceset.add("a_0.exr", good, kit.make_meta())
    with pytest.raises(DflError, match="plain file name"):
        faceset.add("../a_0.png", good, kit.make_meta())
    assert list(tmp_path.iterdir()) == [tmp_path / "faceset.json"]


def test_records_sorted_and_skip_foreign_images_with_a_warning(tmp_path, kit, caplog):
    faceset = Faceset.create(tmp_path, face_type="wf", size=kit.SIZE)
    pixels = np.full((kit.SIZE, kit.SIZE, 3), 0.25, np.float32)
    for frame in (1003, 1001, 1002):
        meta = kit.make_meta(source_filename=f"plate.{frame}.exr", source_frame=frame)
        faceset.add(faceset.name_for(meta.source_filename, 0), pixels, meta)
    write_image(tmp_path / "artist_note.png", Image.from_array(pixels, fmt="uint8"))
    (tmp_path / "corrupt_0.png").write_bytes(b"not a png")
    with caplog.at_level(logging.WARNING, logger="dfl_vfx.faceset.faceset"):
        records = faceset.records()
    assert [r.name for r in records] == ["plate.1001_0.png", "plate.1002_0.png", "plate.1003_0.png"]
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert "artist_note.png: no dfl_vfx:face metadata" in warnings
    assert "corrupt_0.png" in warnings
    assert len(faceset) == 3


def test_faces_survive_a_rename_by_hand(tmp_path, kit):
    faceset = Faceset.create(tmp_path, face_type="wf", size=kit.SIZE)
    meta = kit.make_meta()
    faceset.add("plate.1001_0.png", np.zeros((kit.SIZE, kit.SIZE, 3), np.float32), meta)
    (tmp_path / "plate.1001_0.png").rename(tmp_path / "best_take.png")
    [record] = faceset.records()
    assert record.name == "best_take.png" and record.meta == meta


def test_has_remove(tmp_path, kit):
    faceset = Faceset.create(tmp_path, face_type="wf", size=kit.SIZE)
    faceset.add("a_0", np.zeros((kit.SIZE, kit.SIZE, 3), np.float32), kit.make_meta())
    assert faceset.has("a_0.png") and faceset.has("a_0")
    faceset.remove("a_0.png")
    assert not faceset.has("a_0.png") and len(faceset) == 0
    with pytest.raises(DflError, match="no such face"):
        faceset.remove("a_0.png")


def test_read_rejects_a_replaced_image_of_the_wrong_size(tmp_path, kit):
    faceset = Faceset.create(tmp_path, face_type="wf", size=kit.SIZE)
    meta_json = kit.make_meta().to_json()
    image = Image.from_array(np.zeros((32, 32, 3), np.float32), fmt="uint16", metadata={FACE_ATTRIBUTE: meta_json})
    write_image(tmp_path / "small_0.png", image)
    [record] = faceset.records()
    with pytest.raises(DflError, match=r"small_0.png: face is 32x32 px, the faceset is 128x128"):
        faceset.read(record)


def test_summary(tmp_path, kit):
    faceset = Faceset.create(tmp_path, face_type="wf", size=kit.SIZE)
    pixels = np.zeros((kit.SIZE, kit.SIZE, 3), np.float32)
    faces = [
        ("plate.1001.exr", 1001, 0, -0.5, 0.1, "s3fd"),
        ("plate.1001.exr", 1001, 1, 0.25, -0.2, "s3fd"),
        ("plate.1010.exr", 1010, 0, 0.0, 0.3, "dlib"),
    ]
    for source, frame, index, yaw, pitch, detector in faces:
        meta = kit.make_meta(
            source_filename=source,
            source_frame=frame,
            face_index=index,
            pose={"pitch": pitch, "yaw": yaw, "roll": 0.0},
            detector=detector,
        )
        faceset.add(faceset.name_for(source, index), pixels, meta)
    summary = faceset.summary()
    assert summary["count"] == 3
    assert summary["source_frames"] == (1001, 1010)
    assert summary["yaw_degrees"] == pytest.approx((np.degrees(-0.5), np.degrees(0.25)))
    assert summary["pitch_degrees"] == pytest.approx((np.degrees(-0.2), np.degrees(0.3)))
    assert summary["detectors"] == {"s3fd": 2, "dlib": 1}
    assert summary["per_source"] == {"plate.1001.exr": 2, "plate.1010.exr": 1}


def test_face_file_name_follows_dfl_rule():
    assert face_file_name("/shots/plate.1001.exr", 2, ".png") == "plate.1001_2.png"
    assert face_file_name("00001.png", 0, ".exr") == "00001_0.exr"


def test_face_path_adds_the_suffix_to_dotted_frame_names(tmp_path) -> None:
    fs = Faceset.create(tmp_path / "fs", face_type="wf", size=32)
    assert fs.face_path("plate.1001_0").name == "plate.1001_0.png"
    assert fs.face_path("plate.1001_0.png").name == "plate.1001_0.png"
