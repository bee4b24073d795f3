"""FaceMetadata JSON: exact round trip, unknown keys kept, clear errors for missing or malformed fields."""

import json

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.faceset.metadata import FaceMetadata


def test_json_round_trip_is_exact(kit):
    rng = np.random.default_rng(7)
    meta = kit.make_meta(
        source_landmarks=rng.uniform(0, 4096, (68, 2)),
        landmarks=rng.uniform(0, 128, (68, 2)),
        image_to_face_mat=rng.normal(size=(2, 3)),
        pose={"pitch": 1 / 3, "yaw": -np.pi / 7, "roll": 1e-17},
        track_id=4,
        eyebrows_expand_mod=1.25,
        extra={"note": "hero take", "tags": [1, 2]},
    )
    text = meta.to_json()
    assert text.isascii()
    back = FaceMetadata.from_json(text)
    assert back == meta
    assert back.landmarks_array().tobytes() == meta.landmarks_array().tobytes()
    assert FaceMetadata.from_dict(meta.to_dict()) == meta


def test_arrays_are_stored_as_lists_and_exposed_as_float64(kit):
    meta = kit.make_meta()
    assert isinstance(meta.landmarks, list) and isinstance(meta.image_to_face_mat[0], list)
    assert meta.landmarks_array().shape == (68, 2) and meta.landmarks_array().dtype == np.float64
    assert meta.source_landmarks_array().shape == (68, 2)
    assert meta.matrix().shape == (2, 3)
    np.testing.assert_array_equal(meta.matrix(), [[0.5, 0.01, -40.0], [-0.01, 0.5, -12.5]])
    assert meta.pose_degrees()["yaw"] == pytest.approx(np.degrees(-0.2), abs=1e-12)


def test_unknown_keys_go_to_extra(kit):
    data = json.loads(kit.make_meta(extra={"a": 1}).to_json())
    data["xseg_model"] = "generic_v2"
    meta = FaceMetadata.from_json(json.dumps(data))
    assert meta.extra == {"a": 1, "xseg_model": "generic_v2"}
    assert FaceMetadata.from_json(meta.to_json()) == meta


def test_optional_fields_default(kit):
    data = kit.make_meta().to_dict()
    for key in ("eyebrows_expand_mod", "track_id", "extra"):
        del data[key]
    meta = FaceMetadata.from_dict(data)
    assert (meta.eyebrows_expand_mod, meta.track_id, meta.extra) == (1.0, 0, {})


def test_numpy_values_in_extra_are_serialised(kit):
    meta = kit.make_meta(extra={"embedding": np.arange(3, dtype=np.float32), "n": np.int64(5)})
    assert json.loads(meta.to_json())["extra"] == {"embedding": [0.0, 1.0, 2.0], "n": 5}


def test_still_has_no_frame(kit):
    meta = kit.make_meta(source_filename="ref.png", source_frame=None)
    assert FaceMetadata.from_json(meta.to_json()).source_frame is None


def test_missing_required_keys_name_them_and_the_file(kit):
    data = kit.make_meta().to_dict()
    del data["landmarks"], data["pose"]
    with pytest.raises(DflError, match=r"^faces/a_0\.png: face metadata lacks landmarks, pose; re-extract"):
        FaceMetadata.from_dict(data, "faces/a_0.png")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("landmarks", [[0.0, 1.0]] * 5, r"landmarks must have shape \(68, 2\)"),
        ("image_to_face_mat", [[1.0, 0.0, 0.0]], r"image_to_face_mat must have shape \(2, 3\)"),
        ("pose", {"yaw": 0.0}, "pose lacks pitch, roll"),
        ("size", "large", "invalid face metadata"),
    ],
)
def test_malformed_fields_are_dfl_errors(kit, key, value, message):
    data = kit.make_meta().to_dict()
    data[key] = value
    with pytest.raises(DflError, match=message):
        FaceMetadata.from_dict(data, "x.png")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "null"])
def test_bad_json_is_a_dfl_error(text):
    with pytest.raises(DflError, match="^x.png: face metadata"):
        FaceMetadata.from_json(text, "x.png")
