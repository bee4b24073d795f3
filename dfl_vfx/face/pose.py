"""Head pose (pitch, yaw, roll) from 68 landmarks: solvePnP against a built-in 68-point 3D mean face.

Model and camera axes: x right, y down, z away from the camera (OpenCV camera frame), so a frontal face has
rotation identity and its nose tip has the most negative z. Angle signs, in radians:

- yaw > 0: the face turns toward the image's right (the nose tip moves right);
- pitch > 0: the face looks up (the nose tip moves up in the image);
- roll > 0: the face rotates clockwise as seen in the image.

The rotation taking model points into the camera frame is ``Rz(roll) @ Ry(-yaw) @ Rx(-pitch)`` with the
right-handed axis rotations of :func:`rotation_matrix`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.face.template import (
    FRONTAL_FACE_68,
    JAW,
    LEFT_BROW,
    LEFT_EYE,
    MOUTH_INNER,
    MOUTH_OUTER,
    RIGHT_BROW,
    RIGHT_EYE,
    TEMPLATE_MIDLINE_X,
)


def _mean_face_depth() -> np.ndarray:
    """Depth (z, template units, + = away from the camera) per landmark, relative to the eye-corner plane.

    One template unit is roughly 13 cm (the outer eye corners are 0.74 apart, about 9.5 cm on an adult), and
    the depths follow average adult facial anthropometry at that scale: the jaw contour curves back from the
    chin (slightly forward) to about 6.5 cm behind the eyes at the ears; brows bulge forward at the middle and
    fall back to the temples; the nose rises from the bridge to a tip 3 cm proud of the eye corners with the
    nostril wings lower; eye corners sit behind the lids; lips protrude at the centre and recede to the corners.
    """
    x, _ = FRONTAL_FACE_68.T
    lateral = (x - TEMPLATE_MIDLINE_X) / 0.5  # -1 .. 1 across the brows
    z = np.zeros(68)
    jaw_angle = np.pi - np.arange(JAW.stop) * (np.pi / 16.0)
    z[JAW.start : JAW.stop] = -0.05 + 0.55 * np.abs(np.cos(jaw_angle)) ** 1.5
    brows = [*RIGHT_BROW, *LEFT_BROW]
    z[brows] = -0.06 + 0.22 * lateral[brows] ** 2
    z[27:31] = [-0.02, -0.09, -0.16, -0.24]  # nose bridge down to the tip
    z[31:36] = [-0.06, -0.11, -0.14, -0.11, -0.06]  # nostril wing, nostril, base of the nose
    eyes = [*RIGHT_EYE, *LEFT_EYE]
    z[eyes] = -0.01
    z[[36, 45]] = 0.07  # outer corners
    z[[39, 42]] = 0.03  # inner corners
    outer = list(MOUTH_OUTER)
    z[outer] = -0.12 + 0.14 * (lateral[outer] / 0.47) ** 2
    inner = list(MOUTH_INNER)
    z[inner] = -0.08 + 0.10 * (lateral[inner] / 0.4) ** 2
    return z


def _mean_face_3d() -> np.ndarray:
    model = np.column_stack([FRONTAL_FACE_68, _mean_face_depth()])
    model -= model.mean(axis=0)
    model.setflags(write=False)
    return model


# 68-point 3D mean face in template units (x, y from FRONTAL_FACE_68, z from _mean_face_depth), centred on
# its centroid. Built for this project from anthropometric proportions, not copied from any landmark model.
MEAN_FACE_3D: np.ndarray = _mean_face_3d()


def rotation_matrix(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """3x3 rotation taking model points into the camera frame for the given angles (module conventions)."""

    def about_x(angle: float) -> np.ndarray:
        c, s = math.cos(angle), math.sin(angle)
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])

    def about_y(angle: float) -> np.ndarray:
        c, s = math.cos(angle), math.sin(angle)
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])

    def about_z(angle: float) -> np.ndarray:
        c, s = math.cos(angle), math.sin(angle)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])

    return about_z(roll) @ about_y(-yaw) @ about_x(-pitch)


def pitch_yaw_roll_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`rotation_matrix` (yaw in [-pi/2, pi/2])."""
    r = np.asarray(rotation, dtype=np.float64)
    yaw = -math.atan2(-r[2, 0], math.hypot(r[0, 0], r[1, 0]))
    pitch = -math.atan2(r[2, 1], r[2, 2])
    roll = math.atan2(r[1, 0], r[0, 0])
    return pitch, yaw, roll


def camera_matrix(size: int) -> np.ndarray:
    """Pinhole intrinsics used for pose: focal length = size, principal point at the image centre."""
    return np.array([[size, 0, size / 2.0], [0, size, size / 2.0], [0, 0, 1]], dtype=np.float64)


def estimate_pitch_yaw_roll(landmarks: np.ndarray, size: int) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in radians, each clipped to [-pi/2, pi/2], of 68 landmarks in a ``size`` px image.

    Usually the landmarks of the aligned face (size = aligned image size), as DeepFaceLab does. solvePnP
    (iterative Levenberg-Marquardt) starts from a frontal pose at the distance that matches the landmarks' spread.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2) or not np.isfinite(landmarks).all():
        raise DflError(f"pose needs 68 finite (x, y) landmarks, got an array of shape {landmarks.shape}")
    if size <= 0:
        raise DflError(f"pose needs a positive image size, got {size}")
    intrinsics = camera_matrix(size)
    model_spread = np.linalg.norm(MEAN_FACE_3D[:, :2] - MEAN_FACE_3D[:, :2].mean(axis=0), axis=1).mean()
    image_centroid = landmarks.mean(axis=0)
    image_spread = np.linalg.norm(landmarks - image_centroid, axis=1).mean()
    if image_spread <= 0:
        raise DflError("pose needs landmarks that are not all at one point")
    depth = size * model_spread / image_spread
    start_translation = np.array([*((image_centroid - size / 2.0) * depth / size), depth]).reshape(3, 1)
    ok, rotation_vector, _ = cv2.solvePnP(
        MEAN_FACE_3D,
        landmarks,
        intrinsics,
        None,
        rvec=np.zeros((3, 1)),
        tvec=start_translation,
        useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        raise DflError("pose estimation failed for these landmarks (solvePnP did not converge)")
    rotation, _ = cv2.Rodrigues(rotation_vector)
    half_pi = math.pi / 2.0
    pitch, yaw, roll = (float(np.clip(angle, -half_pi, half_pi)) for angle in pitch_yaw_roll_from_rotation(rotation))
    return pitch, yaw, roll
