"""Swap metrics: SSIM (whole and masked), identity distance, landmark distance at 256 px, pose distance, report."""

import math

import cv2
import numpy as np
import pytest
import skimage.data
from skimage.metrics import structural_similarity

from dfl_vfx.demo.shot import grace_hopper_srgb
from dfl_vfx.eval.metrics import EvalReport, identity_distance, landmark_distance, pose_distance, ssim
from dfl_vfx.face.align import get_transform_mat, transform_points
from dfl_vfx.face.detect import create_backend, find_faces
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.identity import SAME_PERSON_DISTANCE, FaceEmbedder


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def astronaut_landmarks(astronaut: np.ndarray) -> np.ndarray:
    return find_faces(astronaut, create_backend("dlib"))[0].landmarks


def _noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    return np.clip(image + np.random.default_rng(seed).normal(0.0, sigma, image.shape), 0.0, 1.0)


def test_ssim_of_identical_images_is_one(astronaut: np.ndarray) -> None:
    image = astronaut[:128, :128] / 255.0
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_skimage_and_drops_with_noise(astronaut: np.ndarray) -> None:
    image = astronaut[100:228, 150:278] / 255.0
    light, heavy = _noisy(image, 0.02), _noisy(image, 0.1)
    expected = structural_similarity(image, heavy, channel_axis=-1, data_range=1.0)
    assert ssim(image, heavy) == pytest.approx(expected, abs=1e-12)
    assert ssim(image, heavy) < ssim(image, light) < 0.99
    assert ssim(image, heavy) < 0.6  # sigma 0.1 noise on a 0..1 image destroys most local structure


def test_masked_ssim_ignores_changes_outside_the_mask(astronaut: np.ndarray) -> None:
    image = astronaut[:128, :128] / 255.0
    damaged = image.copy()
    damaged[:, 64:] = _noisy(image[:, 64:], 0.2)
    left = np.zeros((128, 128), np.float32)
    left[:, :61] = 1.0  # the 7 px SSIM window of these columns never reaches column 64
    assert ssim(image, damaged, left) == pytest.approx(1.0, abs=1e-9)
    assert ssim(image, damaged) < 0.8
    _, full = structural_similarity(image, damaged, channel_axis=-1, data_range=1.0, full=True)
    right = 1.0 - left
    assert ssim(image, damaged, right) == pytest.approx(full.mean(axis=2)[:, 61:].mean(), abs=1e-12)


def test_identity_distance_same_face_and_different_people(astronaut: np.ndarray,
                                                          astronaut_landmarks: np.ndarray) -> None:
    embedder = FaceEmbedder()
    backend = create_backend("dlib")
    reference = embedder.embed(astronaut, astronaut_landmarks)
    smaller = cv2.resize(astronaut, (400, 400), interpolation=cv2.INTER_AREA)
    again = embedder.embed(smaller, find_faces(smaller, backend)[0].landmarks)
    hopper = grace_hopper_srgb()
    other = embedder.embed(hopper, find_faces(hopper, backend)[0].landmarks)
    assert identity_distance(reference[None], reference) == pytest.approx(0.0, abs=1e-12)
    assert identity_distance(again[None], reference) < 0.2  # same photo at 78 %: measured 0.11
    assert identity_distance(other[None], reference) > SAME_PERSON_DISTANCE  # measured 0.70
    both = identity_distance(np.stack([reference, other]), reference)
    assert both == pytest.approx(np.linalg.norm(other - reference) / 2, abs=1e-12)


def test_landmark_distance_is_measured_at_256_px(astronaut_landmarks: np.ndarray) -> None:
    matrix = get_transform_mat(astronaut_landmarks, 512, FaceType.FULL)
    moved = transform_points(transform_points(astronaut_landmarks, matrix) + (2.0, 0.0), matrix, invert=True)
    assert landmark_distance(moved, astronaut_landmarks, matrix, 512) == pytest.approx(1.0, abs=1e-9)
    # The same faces on a plate of twice the resolution read the same.
    bigger = get_transform_mat(astronaut_landmarks * 2, 512, FaceType.FULL)
    assert landmark_distance(moved * 2, astronaut_landmarks * 2, bigger, 512) == pytest.approx(1.0, abs=1e-6)


def test_pose_distance(astronaut_landmarks: np.ndarray) -> None:
    matrix = get_transform_mat(astronaut_landmarks, 256, FaceType.FULL)
    aligned = transform_points(astronaut_landmarks, matrix)
    assert pose_distance(aligned, aligned) == 0.0
    angle = math.radians(10.0)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    rolled = (aligned - 128.0) @ rotation.T + 128.0
    # A 10 degree roll about the image centre: pitch and yaw unchanged, so the mean of the three is 10/3.
    assert pose_distance(rolled, aligned) == pytest.approx(10.0 / 3.0, abs=0.01)
    # With the matrix, frame landmarks are measured in the aligned face the same way.
    rolled_frame = transform_points(rolled, matrix, invert=True)
    assert pose_distance(rolled_frame, astronaut_landmarks, matrix, 256) == pytest.approx(10.0 / 3.0, abs=0.01)


def test_report_lines_and_dict() -> None:
    report = EvalReport(ssim_src=0.81234, identity_swap_to_src=0.4, landmarks=1.25, pose=0.5, frames=3, faces=3,
                        src_faces=4, missed=[1002, 1003])
    lines = report.lines()
    assert len(lines) == 7
    assert "3 face(s) in 3 frame(s)" in lines[0] and "2 frame(s): 1002-1003" in lines[0]
    assert "SSIM src reconstruction" in lines[1] and "↑" in lines[1] and "0.812" in lines[1]
    assert "n/a" in lines[2] and "--model and --plate" in lines[2]
    assert "↓" in lines[3] and "0.400" in lines[3]
    assert "n/a" in lines[4] and "--plate" in lines[4]
    assert "1.25" in lines[5] and "0.50" in lines[6]
    data = report.to_dict()
    assert data["ssim_dst"] is None and data["missed"] == [1002, 1003] and data["landmarks"] == 1.25
