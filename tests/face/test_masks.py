"""Landmark masks: coverage, containment, area and the eyebrow expansion."""

import math

import cv2
import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.masks import eyes_mask, eyes_mouth_mask, hull_mask, lifted_brows, mouth_mask
from dfl_vfx.face.template import FRONTAL_FACE_68, LEFT_EYE, MOUTH, RIGHT_EYE

SHAPE = (480, 440)


def face(angle_deg: float = 0.0, side: float = 260.0) -> np.ndarray:
    angle = math.radians(angle_deg)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return (FRONTAL_FACE_68 - 0.5) @ rotation.T * side + [220.0, 220.0]


def sample(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Mask value at each point, allowing 1 px: points on the outline are hull vertices, rasterised either way."""
    grown = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    xy = np.round(points).astype(int)
    return grown[xy[:, 1], xy[:, 0]]


def polygon_mask(points: np.ndarray, grow_px: float) -> np.ndarray:
    """Convex hull of ``points`` grown by ``grow_px`` (distance transform), as a boolean image."""
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    inside = np.zeros(SHAPE, np.uint8)
    cv2.fillConvexPoly(inside, np.round(hull).astype(np.int32), 1)
    distance = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    return distance <= grow_px


@pytest.mark.parametrize("angle", [0.0, 25.0, -40.0])
def test_hull_covers_landmarks_and_stays_in_expanded_hull(angle):
    landmarks = face(angle)
    mask = hull_mask(SHAPE, landmarks)
    assert mask.dtype == np.float32 and mask.shape == SHAPE
    assert set(np.unique(mask)) == {0.0, 1.0}
    assert sample(mask, landmarks).all()
    deep = cv2.erode(mask, np.ones((9, 9), np.uint8))  # inner features are at least 4 px inside
    inner = np.round(landmarks[[*range(28, 36), *range(37, 41), *range(43, 47), *range(60, 68)]]).astype(int)
    assert deep[inner[:, 1], inner[:, 0]].all()
    outer = polygon_mask(np.vstack([landmarks, lifted_brows(landmarks)]), grow_px=1.0)
    assert not (mask.astype(bool) & ~outer).any()


def test_hull_area_relative_to_face_box():
    landmarks = face()
    mask = hull_mask(SHAPE, landmarks, eyebrows_expand_mod=0.0)
    box = np.ptp(landmarks, axis=0)
    ratio = mask.sum() / (box[0] * box[1])
    # a face outline fills most of its bounding box, but not its corners
    assert 0.7 < ratio < 0.9


def test_brow_expansion_grows_mask_upward():
    landmarks = face()
    areas = [hull_mask(SHAPE, landmarks, mod).sum() for mod in (0.0, 1.0, 2.0)]
    assert areas[0] < areas[1] < areas[2]
    assert areas[1] > 1.05 * areas[0]
    top_rows = [np.flatnonzero(hull_mask(SHAPE, landmarks, mod).any(axis=1))[0] for mod in (0.0, 1.0, 2.0)]
    brow_top = landmarks[17:27, 1].min()
    assert top_rows[0] == pytest.approx(brow_top, abs=1.5)
    assert top_rows[0] > top_rows[1] > top_rows[2]
    # mod 1 lifts the brows by 0.2 eye-to-mouth distances (0.56 template units * 260 px * 0.2 = 29 px)
    assert brow_top - top_rows[1] == pytest.approx(0.2 * 0.5614 * 260, abs=2.0)


def test_feature_masks_cover_features_and_sit_inside_hull():
    landmarks = face(15.0)
    hull = hull_mask(SHAPE, landmarks)
    eyes = eyes_mask(SHAPE, landmarks)
    mouth = mouth_mask(SHAPE, landmarks)
    both = eyes_mouth_mask(SHAPE, landmarks)
    assert sample(eyes, landmarks[36:48]).all()
    assert sample(mouth, landmarks[48:68]).all()
    np.testing.assert_array_equal(both, np.maximum(eyes, mouth))
    assert not (both.astype(bool) & ~hull.astype(bool)).any()
    # dilated: bigger than the bare landmark hulls, but not by much
    for mask, groups in ((eyes, (RIGHT_EYE, LEFT_EYE)), (mouth, (MOUTH,))):
        bare = sum(cv2.contourArea(cv2.convexHull(landmarks[list(g)].astype(np.float32))) for g in groups)
        assert 1.3 * bare < mask.sum() < 3.0 * bare
    assert not (eyes.astype(bool) & mouth.astype(bool)).any()


def test_mask_clips_at_image_border():
    landmarks = face() + [-200.0, 0.0]  # half the face is left of the image
    mask = hull_mask(SHAPE, landmarks)
    assert mask[:, 0].sum() > 100
    assert 0 < mask.sum() < hull_mask(SHAPE, face()).sum()


def test_bad_input_raises():
    with pytest.raises(DflError):
        hull_mask(SHAPE, np.zeros((5, 2)))
    with pytest.raises(DflError):
        eyes_mask((0, 10), face())
