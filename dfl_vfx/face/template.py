"""The normalized 33-point alignment template, iBUG-68 landmark groups and a frontal 68-point mean layout.

Coordinates are in template units: the unit square [0,1]^2 that the alignment maps the template points into,
x right and y down (image convention).
"""

from __future__ import annotations

import numpy as np

# iBUG 68-point groups ("right" = the subject's right = the image's left for a frontal face).
JAW = range(0, 17)
RIGHT_BROW = range(17, 22)
LEFT_BROW = range(22, 27)
NOSE_BRIDGE = range(27, 31)
NOSE_BOTTOM = range(31, 36)
NOSE = range(27, 36)
RIGHT_EYE = range(36, 42)
LEFT_EYE = range(42, 48)
MOUTH_OUTER = range(48, 60)
MOUTH_INNER = range(60, 68)
MOUTH = range(48, 68)

# Landmarks used to fit the alignment: brows, nose, eyes and the two outer mouth corners (reference 1.3 step 1).
TEMPLATE_INDICES: tuple[int, ...] = (*range(17, 49), 54)

# Reference table 1.4, same order as TEMPLATE_INDICES.
TEMPLATE_POINTS: np.ndarray = np.array(
    [
        [0.000213256, 0.106454],
        [0.0752622, 0.038915],
        [0.18113, 0.0187482],
        [0.29077, 0.0344891],
        [0.393397, 0.0773906],
        [0.586856, 0.0773906],
        [0.689483, 0.0344891],
        [0.799124, 0.0187482],
        [0.904991, 0.038915],
        [0.98004, 0.106454],
        [0.490127, 0.203352],
        [0.490127, 0.307009],
        [0.490127, 0.409805],
        [0.490127, 0.515625],
        [0.36688, 0.587326],
        [0.426036, 0.609345],
        [0.490127, 0.628106],
        [0.554217, 0.609345],
        [0.613373, 0.587326],
        [0.121737, 0.216423],
        [0.187122, 0.178758],
        [0.265825, 0.179852],
        [0.334606, 0.231733],
        [0.260918, 0.245099],
        [0.182743, 0.244077],
        [0.645647, 0.231733],
        [0.714428, 0.179852],
        [0.793132, 0.178758],
        [0.858516, 0.216423],
        [0.79751, 0.244077],
        [0.719335, 0.245099],
        [0.254149, 0.780233],
        [0.726104, 0.780233],
    ],
    dtype=np.float64,
)
TEMPLATE_POINTS.setflags(write=False)

# The template is mirror-symmetric about this vertical line (brows, eyes, nose and mouth corners pair up).
TEMPLATE_MIDLINE_X = 0.490127


def _frontal_face_68() -> np.ndarray:
    """A frontal, mirror-symmetric 68-point face in template units.

    The 33 template landmarks are exactly TEMPLATE_POINTS. The jaw is the lower half of an ellipse centred on
    the midline at eye height (half-width 0.555, chin 0.92 below), sampled at equal angles from ear to ear.
    The remaining mouth points sit between the template mouth corners: a closed mouth with a cupid's-bow
    upper lip and a rounder lower lip.
    """
    points = np.zeros((68, 2), dtype=np.float64)
    points[list(TEMPLATE_INDICES)] = TEMPLATE_POINTS
    angles = np.pi - np.arange(17) * (np.pi / 16.0)
    points[JAW.start : JAW.stop, 0] = TEMPLATE_MIDLINE_X + 0.555 * np.cos(angles)
    points[JAW.start : JAW.stop, 1] = 0.25 + 0.92 * np.sin(angles)
    mid = TEMPLATE_MIDLINE_X
    mouth_rest = {
        49: (mid - 0.16, 0.745),
        50: (mid - 0.08, 0.725),
        51: (mid, 0.735),
        52: (mid + 0.08, 0.725),
        53: (mid + 0.16, 0.745),
        55: (mid + 0.16, 0.830),
        56: (mid + 0.08, 0.860),
        57: (mid, 0.870),
        58: (mid - 0.08, 0.860),
        59: (mid - 0.16, 0.830),
        60: (mid - 0.20, 0.780),
        61: (mid - 0.08, 0.770),
        62: (mid, 0.772),
        63: (mid + 0.08, 0.770),
        64: (mid + 0.20, 0.780),
        65: (mid + 0.08, 0.790),
        66: (mid, 0.792),
        67: (mid - 0.08, 0.790),
    }
    for index, xy in mouth_rest.items():
        points[index] = xy
    points.setflags(write=False)
    return points


FRONTAL_FACE_68: np.ndarray = _frontal_face_68()
