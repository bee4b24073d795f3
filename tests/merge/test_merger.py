"""The per-face merger: settings checks, colour transfer kept within the plate's range, face-scale and masks."""

import numpy as np
import pytest

from dfl_vfx.color.ocio import WorkingSpace
from dfl_vfx.errors import DflError
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.merge.merger import FaceMerger, FacePlan, MergeLayers, MergeSettings, PastedFace, PreparedFace
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


# -- paste: the live steps a host redoes from the layers -----------------------------------------------------------

PLATE_SHAPE = (160, 180)


def _paste(**settings: object) -> tuple[np.ndarray, MergeLayers, PastedFace]:
    """A 64 px face (value 2.0 inside a disc-shaped mask) pasted 1.6x larger, rotated, into a float32 plate of 0.25."""
    merge = MergeSettings(**({"color_transfer": "none"} | settings))
    merger = FaceMerger(merge, WorkingSpace("ACEScg"), 64, FaceType.parse("f"))
    yy, xx = np.mgrid[0:64, 0:64]
    mask = ((xx - 31.5) ** 2 + (yy - 33.5) ** 2 <= 24.0 ** 2).astype(np.float32)
    face = np.full((64, 64, 3), 2.0, np.float32)
    angle = np.radians(9.0)
    matrix = np.array([[np.cos(angle), np.sin(angle), -40.0], [-np.sin(angle), np.cos(angle), -20.0]]) / 1.6
    plate = np.full(PLATE_SHAPE + (4,), 0.25, np.float32)
    plate[..., 3] = 1.0
    layers = MergeLayers(**{name: np.zeros(PLATE_SHAPE + shape, np.float32)
                            for name, shape in (("mask", ()), ("matte", ()), ("face", (4,)), ("raw", (4,)))})
    prepared = PreparedFace(FacePlan(np.zeros((68, 2))), matrix, None, None)
    pasted = merger.paste(plate, 3, (0, 0), prepared, face, mask, layers)
    return plate, layers, pasted


def test_the_matte_layer_is_the_same_whatever_the_live_settings() -> None:
    _, base, _ = _paste(erode=0, blur=0)
    for live in ({"erode": 40, "blur": 80}, {"erode": -60, "blur": 10, "opacity": 0.3, "face_exposure": -2.0}):
        _, layers, _ = _paste(**live)
        np.testing.assert_array_equal(layers.matte, base.matte)
        np.testing.assert_array_equal(layers.raw, base.raw)
    assert base.matte.max() == 1.0 and (base.matte > 0).sum() > 3000


def test_opacity_scales_the_final_matte_and_the_face_layer() -> None:
    plate_full, full, _ = _paste(blur=40, opacity=1.0)
    plate_half, half, _ = _paste(blur=40, opacity=0.4)
    # (the layers gather faces as 1 - (1 - layer)(1 - m): float32 rounding of about 1e-7)
    np.testing.assert_allclose(half.mask, 0.4 * full.mask, rtol=1e-6, atol=2e-7)
    np.testing.assert_allclose(half.face, 0.4 * full.face, rtol=1e-6, atol=5e-7)
    assert full.mask.max() > 0.99
    # the composite is face * m + plate * (1 - m) with the scaled matte
    m = half.mask[..., None]
    expected = np.broadcast_to(2.0 * m + 0.25 * (1 - m), plate_half[..., :3].shape)
    np.testing.assert_allclose(plate_half[..., :3], expected, rtol=1e-6, atol=1e-6)
    untouched = full.mask == 0
    assert (plate_half[untouched] == plate_full[untouched]).all() and (plate_half[untouched, 0] == 0.25).all()


def test_face_exposure_multiplies_the_face_by_two_to_the_stops_and_not_the_raw_layer() -> None:
    _, flat, _ = _paste(blur=20)
    plate, graded, _ = _paste(blur=20, face_exposure=1.5)
    np.testing.assert_allclose(graded.face[..., :3], flat.face[..., :3] * 2 ** 1.5, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(graded.raw, flat.raw)
    solid = graded.mask > 0.9999
    assert solid.sum() > 1000
    np.testing.assert_allclose(plate[solid, :3], 2.0 * 2 ** 1.5, rtol=1e-4)


def test_a_dilated_matte_stays_on_the_face_and_the_blur_fades_inside_it() -> None:
    # mask "full": the matte is the whole square; dilating it must not lay the black outside the square on the plate
    plate, layers, pasted = _paste(mask_mode="full", erode=-80, blur=0)
    coverage = layers.raw[..., 3]
    assert (layers.mask <= coverage + 1e-7).all() and (layers.mask > 0.99).sum() > 3000
    plate, layers, pasted = _paste(mask_mode="full", erode=-80, blur=60)
    # the blur starts clip_px inside the coverage (DeepFaceLab's clip, in plate pixels) and fades before its edge
    assert pasted.clip_px == pytest.approx(60 / 2 * pasted.px_per_unit) and pasted.clip_px > 3 * pasted.blur_sigma
    assert (layers.mask[coverage < 0.99] < 0.01).all()  # (bicubic sums of weights leave the inside at 1 - 1e-7)
    assert plate[..., :3].min() >= 0.25 - 1e-6  # no dark fringe: the face (2.0) never blends with black


def test_the_pasted_face_gives_plate_pixels_and_the_footprint() -> None:
    _, layers, pasted = _paste(erode=30, blur=50, face_scale=0)
    assert pasted.px_per_unit == pytest.approx(1.6 / 4)
    assert pasted.erode_px == 30 / 2 * pasted.px_per_unit
    assert pasted.clip_px == 50 / 2 * pasted.px_per_unit
    assert pasted.blur_sigma == pytest.approx((0.3 * ((51 - 1) / 2 - 1) + 0.8) * 1.6 / 4)
    x0, y0, x1, y1 = pasted.footprint
    outside = np.ones(PLATE_SHAPE, bool)
    outside[y0:y1, x0:x1] = False
    assert not layers.matte[outside].any() and not layers.raw[outside].any()
    bx0, by0, bx1, by1 = pasted.bbox
    assert (bx0, by0) <= (x0, y0) and (bx1, by1) >= (x1, y1)
    written = np.ones(PLATE_SHAPE, bool)
    written[by0:by1, bx0:bx1] = False
    assert not layers.mask[written].any()
