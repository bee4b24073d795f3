"""The per-face merger: settings checks, colour transfer kept within the plate's range, face-scale and masks."""

import numpy as np
import pytest

from dfl_vfx.color.ocio import WorkingSpace
from dfl_vfx.errors import DflError
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.merge.merger import FaceMerger, FacePlan, MergeSettings, PreparedFace
from dfl_vfx.schema import SettingError


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("erode", 401, "erode 401: out of range"), ("blur", -1, "blur -1: out of range"),
     ("color_transfer", "xyz", "color_transfer xyz: unknown"), ("face_scale", 60, "face_scale 60: out of range"),
     ("interpolation", "area", "interpolation area: unknown"), ("sharpen_mode", "x", "sharpen_mode x: unknown"),
     ("motion_blur", 101, "motion_blur 101: out of range"), ("mask_mode", "hull*nose", "mask_mode hull*nose: unknown")],
)
def test_settings_name_the_bad_setting(option: str, value: object, message: str) -> None:
    with pytest.raises(SettingError) as err:
        MergeSettings(**{option: value}).validate()
    assert str(err.value).startswith(message)
    assert err.value.setting == option


def test_unknown_color_transfer_lists_each_mode_once() -> None:
    with pytest.raises(DflError) as err:
        MergeSettings(color_transfer="xyz").validate()
    modes = "none, rct, lct, mkl, mkl-m, idt, idt-m, sot-m, mix-m"
    assert str(err.value) == f"color_transfer xyz: unknown; use {modes}"


def test_digest_changes_with_any_setting() -> None:
    base = MergeSettings().digest("model")
    assert MergeSettings().digest("model") == base
    assert MergeSettings(erode=1).digest("model") != base
    assert MergeSettings().digest("other model") != base


def _prepared(size: int = 64) -> PreparedFace:
    rng = np.random.default_rng(0)
    crop = (0.3 + 0.2 * rng.random((size, size, 3))).astype(np.float32)  # destination crop in ACEScct
    hull = np.zeros((size, size), np.float32)
    hull[8:56, 8:56] = 1.0
    matrix = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])
    return PreparedFace(FacePlan(np.zeros((68, 2))), matrix, crop, hull)


def test_transfer_of_a_flat_prediction_stays_within_the_plate_range() -> None:
    space = WorkingSpace("ACEScg")
    merger = FaceMerger(MergeSettings(color_transfer="rct", mask_mode="hull", blur=0), space, 64, FaceType.parse("f"))
    prepared = _prepared()
    rng = np.random.default_rng(1)
    flat = (0.45 + 1e-3 * rng.standard_normal((64, 64, 3))).astype(np.float32)  # an untrained model's output
    ones = np.ones((64, 64), np.float32)
    face, mask = merger.finish_face(prepared, flat, ones, ones, several_faces=False)
    crop_linear = space.from_working(prepared.model_input)
    assert face.max() <= crop_linear.max() * 2.0  # without the clip: hundreds
    assert face.min() >= -0.05
    np.testing.assert_array_equal(mask, prepared.hull)


def test_learned_masks_combine_as_the_mode_says() -> None:
    merger = FaceMerger(MergeSettings(color_transfer="none", mask_mode="learned-prd*learned-dst", blur=0),
                        WorkingSpace("ACEScg"), 64, FaceType.parse("f"))
    prd = np.full((64, 64), 0.5, np.float32)
    dst = np.full((64, 64), 0.8, np.float32)
    _, mask = merger.finish_face(_prepared(), _prepared().model_input, prd, dst, several_faces=False)
    np.testing.assert_allclose(mask, 0.4, atol=1e-6)
