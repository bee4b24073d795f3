"""Landmark masks: the face hull (jaw, cheeks, nose, eyes, brows pushed up), eyes, mouth and eyes+mouth.

All masks are float32 (H, W) arrays holding 0 or 1, drawn with cv2.fillConvexPoly at 1/16 px precision in
OpenCV pixel coordinates.
"""

from __future__ import annotations

import cv2
import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.face.template import JAW, LEFT_BROW, LEFT_EYE, MOUTH, NOSE, NOSE_BOTTOM, RIGHT_BROW, RIGHT_EYE

# Brow lift at eyebrows_expand_mod = 1, as a fraction of the eye-to-mouth distance (about 1.5 cm on an adult).
BROW_LIFT = 0.2
# Dilation radii of the feature masks, as a fraction of the eye / mouth width.
EYE_DILATION = 0.15
MOUTH_DILATION = 0.1

_SUBPIXEL_BITS = 4
_DISC = np.array([(np.cos(a), np.sin(a)) for a in np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)])


def _check(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2) or not np.isfinite(landmarks).all():
        raise DflError(f"masks need 68 finite (x, y) landmarks, got an array of shape {landmarks.shape}")
    if len(shape) != 2 or min(shape) <= 0:
        raise DflError(f"mask shape must be (height, width), got {shape}")
    return landmarks


def _fill_hull(mask: np.ndarray, points: np.ndarray) -> None:
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    fixed = np.round(hull.astype(np.float64) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillConvexPoly(mask, fixed, 1.0, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)


def _dilated(points: np.ndarray, radius: float) -> np.ndarray:
    """Points whose convex hull is the hull of ``points`` grown by ``radius`` (Minkowski sum with a 16-gon)."""
    return (points[:, None, :] + radius * _DISC[None, :, :]).reshape(-1, 2)


def face_up_vector(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit vector from the mouth centre toward the eye centre, and that eye-to-mouth distance in px."""
    eyes = (landmarks[list(RIGHT_EYE)].mean(axis=0) + landmarks[list(LEFT_EYE)].mean(axis=0)) / 2.0
    mouth = (landmarks[48] + landmarks[54]) / 2.0
    offset = eyes - mouth
    distance = float(np.linalg.norm(offset))
    if distance == 0.0:
        raise DflError("landmarks are degenerate: the eye and mouth centres coincide")
    return offset / distance, distance


def lifted_brows(landmarks: np.ndarray, eyebrows_expand_mod: float = 1.0) -> np.ndarray:
    """Brow points 17..26 moved up the face by ``BROW_LIFT * eyebrows_expand_mod`` eye-to-mouth distances."""
    up, eye_mouth = face_up_vector(np.asarray(landmarks, dtype=np.float64))
    brows = np.asarray(landmarks, dtype=np.float64)[RIGHT_BROW.start : LEFT_BROW.stop]
    return brows + up * (BROW_LIFT * eyebrows_expand_mod * eye_mouth)


def hull_mask(shape: tuple[int, int], landmarks: np.ndarray, eyebrows_expand_mod: float = 1.0) -> np.ndarray:
    """Face mask: the union of convex hulls that follow the face outline without bridging concavities.

    The brows are first lifted along the face's up direction (mouth centre -> eye centre) by
    ``BROW_LIFT * eyebrows_expand_mod`` of the eye-to-mouth distance, so the mask covers the brows and a band
    of forehead above them (0 keeps them on the brows). Hulls, each convex:

    - right half: jaw 0..8, lifted right brow, nose bridge top (27);
    - left half: jaw 8..16, lifted left brow, 27 (the halves share the 27-8 midline, so no gap between them);
    - forehead band: original and lifted brows 17..26 with the nose bridge 27..30;
    - nose 27..35, each eye, mouth 48..67, and nose base + mouth + chin (31..35, 48..59, jaw 6..10), which keep
      a profile's nose, lips and chin inside even where they stick out of the jaw outline.
    """
    landmarks = _check(shape, landmarks)
    lifted = lifted_brows(landmarks, eyebrows_expand_mod)
    lifted_right, lifted_left = lifted[: len(RIGHT_BROW)], lifted[len(RIGHT_BROW) :]
    brows = landmarks[RIGHT_BROW.start : LEFT_BROW.stop]
    parts = [
        np.vstack([landmarks[JAW.start : 9], lifted_right, landmarks[[27]]]),
        np.vstack([landmarks[8 : JAW.stop], lifted_left, landmarks[[27]]]),
        np.vstack([brows, lifted, landmarks[27:31]]),
        landmarks[list(NOSE)],
        landmarks[list(RIGHT_EYE)],
        landmarks[list(LEFT_EYE)],
        landmarks[list(MOUTH)],
        np.vstack([landmarks[list(NOSE_BOTTOM)], landmarks[48:60], landmarks[6:11]]),
    ]
    mask = np.zeros(shape, dtype=np.float32)
    for points in parts:
        _fill_hull(mask, points)
    return mask


def eyes_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """Both eyes: each eye's landmark hull grown by ``EYE_DILATION`` of that eye's corner-to-corner width."""
    landmarks = _check(shape, landmarks)
    mask = np.zeros(shape, dtype=np.float32)
    for eye, (outer, inner) in ((RIGHT_EYE, (36, 39)), (LEFT_EYE, (45, 42))):
        radius = EYE_DILATION * float(np.linalg.norm(landmarks[outer] - landmarks[inner]))
        _fill_hull(mask, _dilated(landmarks[list(eye)], radius))
    return mask


def mouth_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """The mouth: hull of 48..67 grown by ``MOUTH_DILATION`` of the corner-to-corner width."""
    landmarks = _check(shape, landmarks)
    mask = np.zeros(shape, dtype=np.float32)
    radius = MOUTH_DILATION * float(np.linalg.norm(landmarks[54] - landmarks[48]))
    _fill_hull(mask, _dilated(landmarks[list(MOUTH)], radius))
    return mask


def eyes_mouth_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """Union of :func:`eyes_mask` and :func:`mouth_mask`."""
    return np.maximum(eyes_mask(shape, landmarks), mouth_mask(shape, landmarks))
