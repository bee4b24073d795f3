"""Head pose: solvePnP against the built-in 3D mean face, angle conventions and recovery accuracy."""

import math

import cv2
import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.pose import (
    MEAN_FACE_3D,
    camera_matrix,
    estimate_pitch_yaw_roll,
    pitch_yaw_roll_from_rotation,
    rotation_matrix,
)
from dfl_vfx.face.template import FRONTAL_FACE_68

SIZE = 256
DISTANCE = 1.8  # template units; the face then spans about 60 % of the image, like an aligned full face


def project(pitch_deg: float, yaw_deg: float, roll_deg: float, offset=(0.0, 0.0)) -> np.ndarray:
    rotation = rotation_matrix(*np.radians([pitch_deg, yaw_deg, roll_deg]))
    rotation_vector, _ = cv2.Rodrigues(rotation)
    translation = np.array([offset[0], offset[1], DISTANCE])
    points, _ = cv2.projectPoints(MEAN_FACE_3D, rotation_vector, translation, camera_matrix(SIZE), None)
    return points.reshape(68, 2)


def estimate_deg(landmarks: np.ndarray) -> np.ndarray:
    return np.degrees(estimate_pitch_yaw_roll(landmarks, SIZE))


def test_model_shape_and_layout():
    assert MEAN_FACE_3D.shape == (68, 3)
    np.testing.assert_allclose(MEAN_FACE_3D.mean(axis=0), 0.0, atol=1e-12)
    # x, y follow the frontal layout; the nose tip is the point nearest the camera, the jaw ends the farthest.
    np.testing.assert_allclose(
        MEAN_FACE_3D[:, :2] - MEAN_FACE_3D[:, :2].mean(0), FRONTAL_FACE_68 - FRONTAL_FACE_68.mean(0)
    )
    assert int(np.argmin(MEAN_FACE_3D[:, 2])) == 30
    assert set(np.argsort(MEAN_FACE_3D[:, 2])[-2:]) == {0, 16}


@pytest.mark.parametrize(
    "angles", [(-10.0, 20.0, 5.0), (0.0, 0.0, 0.0), (15.0, -35.0, -12.0), (0.0, 60.0, 0.0), (-25.0, 0.0, 20.0)]
)
def test_recovers_known_pose(angles):
    estimated = estimate_deg(project(*angles, offset=(0.05, -0.03)))
    np.testing.assert_allclose(estimated, angles, atol=1.5)


def test_recovers_pose_from_noisy_landmarks():
    rng = np.random.default_rng(5)
    landmarks = project(-10.0, 20.0, 5.0) + rng.normal(0.0, 1.0, size=(68, 2))
    np.testing.assert_allclose(estimate_deg(landmarks), [-10.0, 20.0, 5.0], atol=1.5)


def test_frontal_layout_is_near_zero():
    # The 2D frontal layout (no perspective) centred in the image, as an aligned frontal face would be.
    landmarks = (FRONTAL_FACE_68 - FRONTAL_FACE_68.mean(axis=0)) * 150 + SIZE / 2
    np.testing.assert_allclose(estimate_deg(landmarks), [0.0, 0.0, 0.0], atol=1.5)


def test_sign_conventions_in_the_image():
    frontal = project(0, 0, 0)

    def nose_vs_jaw(landmarks):
        return landmarks[30] - (landmarks[0] + landmarks[16]) / 2

    # yaw > 0: nose tip moves to the image's right.
    assert nose_vs_jaw(project(0, 20, 0))[0] > nose_vs_jaw(frontal)[0] + 10
    # pitch > 0: looking up, nose tip moves up (smaller y) relative to the jaw ends behind it.
    assert nose_vs_jaw(project(20, 0, 0))[1] < nose_vs_jaw(frontal)[1] - 10
    # roll > 0: clockwise in the image, the image-right eye goes below the image-left eye.
    rolled = project(0, 0, 20)
    assert rolled[45, 1] - rolled[36, 1] > 10
    # and each single-axis pose is read back with its own sign
    assert estimate_deg(project(0, 20, 0))[1] == pytest.approx(20.0, abs=0.5)
    assert estimate_deg(project(20, 0, 0))[0] == pytest.approx(20.0, abs=0.5)
    assert estimate_deg(project(0, 0, 20))[2] == pytest.approx(20.0, abs=0.5)


def test_rotation_round_trip():
    for angles in [(0.3, -0.7, 1.2), (-1.0, 0.2, -2.5), (0.0, 1.4, 0.0)]:
        np.testing.assert_allclose(pitch_yaw_roll_from_rotation(rotation_matrix(*angles)), angles, atol=1e-12)


def test_angles_are_clipped_to_half_pi():
    pitch, yaw, roll = estimate_pitch_yaw_roll(project(0, 0, 150), SIZE)
    assert abs(roll) == pytest.approx(math.pi / 2)
    assert max(abs(pitch), abs(yaw)) < math.radians(1.5)


def test_bad_input_raises():
    with pytest.raises(DflError):
        estimate_pitch_yaw_roll(np.zeros((5, 2)), SIZE)
    with pytest.raises(DflError):
        estimate_pitch_yaw_roll(np.full((68, 2), 10.0), SIZE)
