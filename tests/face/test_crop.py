"""The one plate -> aligned face crop: its box, unpremultiply, NaN/Inf and off-plate faces, and that extraction, the
merger and eval all cut exactly the same pixels with it."""

import math

import numpy as np
import pytest

from dfl_vfx.color.ocio import WorkingSpace
from dfl_vfx.eval.shot import SwapFace, _dst_model_face, _Frame
from dfl_vfx.extract.pipeline import face_crop
from dfl_vfx.face.align import get_transform_mat, warp_to_aligned
from dfl_vfx.face.crop import crop_box, crop_face, crop_face_at, local_matrix
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.template import FRONTAL_FACE_68
from dfl_vfx.merge.merger import FaceMerger, FacePlan, MergeSettings

ORIGIN = (-17, 23)  # the plate's data window starts here: landmarks and matrices are absolute pixels
SHAPE = (400, 420)  # (height, width) of the plate array
SIZE = 64


def face_landmarks(centre: tuple[float, float] = (210.0, 220.0), side: float = 80.0,
                   angle_deg: float = 12.0) -> np.ndarray:
    """The frontal mean face, ``side`` px wide, rotated, centred at ``centre`` in array pixels (absolute returned)."""
    a = math.radians(angle_deg)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (FRONTAL_FACE_68 - 0.5) @ rotation.T * side + np.array(centre) + np.array(ORIGIN, np.float64)


def straight_plate(seed: int = 0) -> np.ndarray:
    """Scene-linear straight RGB with highlights above 1 and fine detail (so resampling differences show)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(np.float32)
    plate = np.stack([0.2 + x / SHAPE[1], 0.1 + y / SHAPE[0], 0.05 + 0.02 * np.sin(x / 3.0)], axis=-1)
    return (plate + 2.0 * rng.random(SHAPE + (3,), dtype=np.float32) ** 8).astype(np.float32)


@pytest.mark.parametrize("face_type", [FaceType.FULL, FaceType.WHOLE_FACE, FaceType.HEAD])
def test_the_crop_reads_only_its_box_and_equals_the_whole_plate_warp(face_type: FaceType) -> None:
    plate = straight_plate()
    landmarks = face_landmarks()
    crop, matrix = crop_face(plate, None, ORIGIN, landmarks, face_type, SIZE)
    np.testing.assert_array_equal(matrix, get_transform_mat(landmarks, SIZE, face_type))
    whole = warp_to_aligned(plate, local_matrix(matrix, ORIGIN), SIZE, "lanczos")
    np.testing.assert_array_equal(crop, whole)
    assert crop.shape == (SIZE, SIZE, 3) and crop.dtype == np.float32 and crop.max() > 1.0
    x0, y0, x1, y1 = crop_box(matrix, SIZE, ORIGIN, SHAPE)
    assert 0 < x0 < x1 < SHAPE[1] and 0 < y0 < y1 < SHAPE[0]  # the box, not the whole plate
    changed = plate.copy()
    changed[:, : x0] = 7.0  # pixels outside the box do not reach the crop
    changed[y1:] = 7.0
    np.testing.assert_array_equal(crop_face(changed, None, ORIGIN, landmarks, face_type, SIZE)[0], crop)


def test_a_premultiplied_plate_is_unpremultiplied_before_resampling() -> None:
    straight = straight_plate()
    alpha = np.random.default_rng(1).uniform(0.2, 1.0, SHAPE).astype(np.float32)
    premultiplied = straight * alpha[..., None]
    landmarks = face_landmarks()
    expected, _ = crop_face(straight, None, ORIGIN, landmarks, FaceType.WHOLE_FACE, SIZE)
    crop, _ = crop_face(premultiplied, alpha, ORIGIN, landmarks, FaceType.WHOLE_FACE, SIZE)
    np.testing.assert_allclose(crop, expected, rtol=2e-6, atol=1e-6)
    darker, _ = crop_face(premultiplied, None, ORIGIN, landmarks, FaceType.WHOLE_FACE, SIZE)
    assert np.abs(darker - expected).max() > 0.1  # (without the alpha the crop would be the darker premultiplied)


def test_nan_and_inf_in_the_plate_read_as_zero_and_a_nan_alpha_as_one() -> None:
    plate = straight_plate()
    alpha = np.ones(SHAPE, np.float32)
    landmarks = face_landmarks()
    zeroed = plate.copy()
    zeroed[180, 210] = 0.0
    zeroed[160, 200, 1] = 0.0
    bad = plate.copy()
    bad[180, 210] = np.nan
    bad[160, 200, 1] = np.inf
    alpha[170, 220] = np.nan
    crop, _ = crop_face(bad, alpha, ORIGIN, landmarks, FaceType.FULL, SIZE)
    assert np.isfinite(crop).all()
    np.testing.assert_array_equal(crop, crop_face(zeroed, None, ORIGIN, landmarks, FaceType.FULL, SIZE)[0])


def test_a_face_off_the_plate_is_black_and_one_partly_off_reads_zero_beyond_the_edge() -> None:
    plate = straight_plate()
    off = face_landmarks(centre=(-400.0, 180.0))
    crop, _ = crop_face(plate, None, ORIGIN, off, FaceType.FULL, SIZE)
    assert crop.shape == (SIZE, SIZE, 3) and not crop.any()
    partly = face_landmarks(centre=(10.0, 180.0), angle_deg=0.0)  # the left part of the square is off the plate
    crop, _ = crop_face(plate, None, ORIGIN, partly, FaceType.FULL, SIZE)
    assert not crop[:, :4].any() and crop[:, -8:].any(axis=-1).all()


def test_extraction_the_merger_and_eval_cut_the_same_face() -> None:
    space = WorkingSpace("ACEScg")
    straight = straight_plate(2)
    landmarks = face_landmarks(angle_deg=-20.0)
    face_type = FaceType.WHOLE_FACE
    crop, matrix = crop_face(straight, None, ORIGIN, landmarks, face_type, SIZE)
    expected = space.to_working(crop)

    extracted, extract_matrix = face_crop(straight, ORIGIN, landmarks, SIZE, face_type)
    np.testing.assert_array_equal(extracted, crop)
    np.testing.assert_array_equal(extract_matrix, matrix)

    merger = FaceMerger(MergeSettings(), space, SIZE, face_type)
    opaque = np.ascontiguousarray(np.dstack([straight, np.ones(SHAPE, np.float32)]))
    prepared = merger.prepare(opaque, None, ORIGIN, FacePlan(landmarks))
    np.testing.assert_array_equal(prepared.model_input, expected)
    np.testing.assert_array_equal(prepared.matrix, matrix)

    header_face = SwapFace(1001, None, landmarks, matrix, SIZE, face_type)  # as eval reads it from a swap header
    frame = _Frame(straight, np.array(ORIGIN, np.float64), space)
    evaluated, _ = _dst_model_face(frame, header_face, SIZE)
    np.testing.assert_array_equal(evaluated, expected)


def test_the_merger_crops_a_premultiplied_plate_by_its_alpha_channel() -> None:
    space = WorkingSpace("ACEScg")
    straight = straight_plate(3)
    alpha = np.random.default_rng(4).uniform(0.3, 1.0, SHAPE).astype(np.float32)
    plate = np.ascontiguousarray(np.dstack([straight * alpha[..., None], alpha])).astype(np.float16)
    landmarks = face_landmarks()
    merger = FaceMerger(MergeSettings(), space, SIZE, FaceType.FULL)
    prepared = merger.prepare(plate, 3, ORIGIN, FacePlan(landmarks))
    crop = crop_face_at(plate[..., :3], plate[..., 3], ORIGIN, prepared.matrix, SIZE)
    np.testing.assert_array_equal(prepared.model_input, space.to_working(crop))
    assert prepared.model_input.dtype == np.float32 and prepared.hull.shape == (SIZE, SIZE)
