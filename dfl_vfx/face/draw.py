"""Debug drawing on uint8 RGB images: 68 landmarks (dots and feature outlines) and aligned-crop quads."""

from __future__ import annotations

import cv2
import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.face.template import (
    JAW,
    LEFT_BROW,
    LEFT_EYE,
    MOUTH_INNER,
    MOUTH_OUTER,
    NOSE_BOTTOM,
    NOSE_BRIDGE,
    RIGHT_BROW,
    RIGHT_EYE,
)

_SHIFT_BITS = 4
# (group, closed outline)
_OUTLINES = (
    (JAW, False),
    (RIGHT_BROW, False),
    (LEFT_BROW, False),
    (NOSE_BRIDGE, False),
    (NOSE_BOTTOM, False),
    (RIGHT_EYE, True),
    (LEFT_EYE, True),
    (MOUTH_OUTER, True),
    (MOUTH_INNER, True),
)

Color = tuple[int, int, int]


def _canvas(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DflError(f"debug drawing needs a uint8 RGB (H, W, 3) image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image).copy()


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * (1 << _SHIFT_BITS)).astype(np.int32)


def default_radius(image: np.ndarray) -> int:
    """Dot radius that stays visible at any resolution: 1 px per 500 px of the longer side, at least 1."""
    return max(1, round(max(image.shape[:2]) / 500))


def draw_landmarks(
    image: np.ndarray, landmarks: np.ndarray, color: Color = (0, 255, 0), radius: int | None = None
) -> np.ndarray:
    """Copy of ``image`` with the 68 landmarks drawn as dots joined by feature outlines (jaw, brows, ...)."""
    canvas = _canvas(image)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2):
        raise DflError(f"draw_landmarks needs 68 (x, y) landmarks, got an array of shape {landmarks.shape}")
    radius = default_radius(canvas) if radius is None else radius
    thickness = max(1, radius // 2)
    points = _fixed(landmarks)
    for group, closed in _OUTLINES:
        cv2.polylines(canvas, [points[group.start : group.stop]], closed, color, thickness, cv2.LINE_AA, _SHIFT_BITS)
    for point in points:
        cv2.circle(canvas, tuple(int(v) for v in point), radius << _SHIFT_BITS, color, -1, cv2.LINE_AA, _SHIFT_BITS)
    return canvas


def draw_quad(
    image: np.ndarray, quad: np.ndarray, color: Color = (255, 0, 0), thickness: int | None = None
) -> np.ndarray:
    """Copy of ``image`` with a (TL, TR, BR, BL) quad outlined; the top edge is drawn thicker to show up."""
    canvas = _canvas(image)
    quad = np.asarray(quad, dtype=np.float64)
    if quad.shape != (4, 2):
        raise DflError(f"draw_quad needs 4 (x, y) corners, got an array of shape {quad.shape}")
    thickness = default_radius(canvas) if thickness is None else thickness
    corners = _fixed(quad)
    cv2.polylines(canvas, [corners], True, color, thickness, cv2.LINE_AA, _SHIFT_BITS)
    cv2.polylines(canvas, [corners[:2]], False, color, 2 * thickness + 1, cv2.LINE_AA, _SHIFT_BITS)
    return canvas
