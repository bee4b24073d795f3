"""dlib backend on the astronaut and Grace Hopper: rects, landmarks, downscaled detection, CNN."""

import cv2
import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.detect import DlibBackend, find_faces
from dfl_vfx.face.detect import dlib_backend as module

# Measured once with dlib 20.0 HOG, upsample 1, on skimage.data.astronaut() (512x512): Eileen Collins' face.
ASTRONAUT_FACE = (175.0, 76.0, 265.0, 166.0)
# Measured the same way on matplotlib's grace_hopper.jpg (512x600).
HOPPER_FACE = (180.0, 139.0, 366.0, 325.0)
EYE_CORNERS = [36, 39, 42, 45]


def iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    overlap = width * height
    return overlap / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap)


def assert_landmarks_in_rect(face, margin: float = 0.15) -> None:
    left, top, right, bottom = face.rect
    pad_x, pad_y = margin * face.width, margin * face.height
    assert face.landmarks.shape == (68, 2) and face.landmarks.dtype == np.float64
    assert np.all(face.landmarks[:, 0] > left - pad_x) and np.all(face.landmarks[:, 0] < right + pad_x)
    assert np.all(face.landmarks[:, 1] > top - pad_y) and np.all(face.landmarks[:, 1] < bottom + pad_y)


def test_astronaut_one_face_with_landmarks(astronaut, hog):
    faces = find_faces(astronaut, hog)
    # At upsample 1 HOG also fires weakly (score ~0.12) on the suit; the face is the largest and strongest.
    assert iou(faces[0].rect, ASTRONAUT_FACE) > 0.5
    assert faces[0].score > 1.0
    assert_landmarks_in_rect(faces[0])
    # Eyes above nose tip above chin; left eye (36) left of right eye (45) in image x.
    points = faces[0].landmarks
    assert points[36, 1] < points[30, 1] < points[8, 1]
    assert points[36, 0] < points[45, 0]

    strict = find_faces(astronaut, DlibBackend(min_score=0.5))
    assert len(strict) == 1
    assert iou(strict[0].rect, ASTRONAUT_FACE) > 0.5


def test_astronaut_upsample_zero_finds_only_the_face(astronaut):
    faces = find_faces(astronaut, DlibBackend(upsample=0))
    assert len(faces) == 1
    assert iou(faces[0].rect, ASTRONAUT_FACE) > 0.5


def test_grace_hopper_one_face(grace_hopper, hog):
    faces = find_faces(grace_hopper, hog)
    assert len(faces) == 1
    assert iou(faces[0].rect, HOPPER_FACE) > 0.5
    assert_landmarks_in_rect(faces[0])


def test_grayscale_input_is_replicated(astronaut, hog):
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    faces = find_faces(grey, hog, max_faces=1)
    assert len(faces) == 1
    assert iou(faces[0].rect, ASTRONAUT_FACE) > 0.5


def test_downscaled_detection_matches_full_resolution(astronaut):
    # The astronaut doubled and pasted into a 1920x1080 black plate: detection runs at 640x360.
    hog = DlibBackend(coarse_first=False)  # the upsampled pass only: its rects are the precise ones
    offset_x, offset_y = 600, 28
    plate = np.zeros((1080, 1920, 3), np.uint8)
    plate[offset_y : offset_y + 1024, offset_x : offset_x + 1024] = cv2.resize(
        astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC
    )
    reference = find_faces(astronaut, hog, max_faces=1)[0]
    # Pixel-centre mapping of a 2x upscale, then the paste offset.
    expected_rect = np.array(reference.rect) * 2 + 0.5 + np.array([offset_x, offset_y] * 2)
    expected_points = reference.landmarks * 2 + 0.5 + np.array([offset_x, offset_y])

    downscaled = find_faces(plate, hog, detect_size=640)
    full = find_faces(plate, hog, detect_size=1920)
    assert len(downscaled) == 1 and len(full) == 1
    # HOG's rect quantisation is ~8 px of the working image (24 px here): compare rects by IoU.
    assert iou(downscaled[0].rect, expected_rect) > 0.85
    assert iou(downscaled[0].rect, full[0].rect) > 0.85
    # Landmarks are fitted on the full-res plate, so they agree to a few pixels (measured max 2.5 px).
    assert np.abs(downscaled[0].landmarks[EYE_CORNERS] - expected_points[EYE_CORNERS]).max() <= 3.0
    assert np.linalg.norm(downscaled[0].landmarks - expected_points, axis=1).mean() < 2.0
    assert np.abs(downscaled[0].landmarks[EYE_CORNERS] - full[0].landmarks[EYE_CORNERS]).max() <= 3.0


def test_black_image_has_no_faces(hog):
    assert find_faces(np.zeros((360, 640, 3), np.uint8), hog) == []
    assert hog.detect(np.zeros((64, 64, 3), np.uint8)) == []


def test_cnn_model_finds_the_astronaut(astronaut):
    # A 240x240 crop keeps the MMOD CNN (~2 s on a full frame) fast; the face is ~90 px, found at upsample 0.
    crop = np.ascontiguousarray(astronaut[20:260, 100:340])
    faces = find_faces(crop, DlibBackend(model="cnn", upsample=0))
    assert len(faces) == 1
    shifted = np.array(ASTRONAUT_FACE) - np.array([100, 20, 100, 20])
    assert iou(faces[0].rect, shifted) > 0.5
    assert faces[0].score > 0.5
    # MMOD boxes sit higher and tighter than the HOG boxes the shape predictor was trained on, yet the fitted
    # landmarks agree with the HOG route (measured mean 1.4 px).
    hog_points = find_faces(crop, DlibBackend(upsample=0))[0].landmarks
    assert np.linalg.norm(faces[0].landmarks - hog_points, axis=1).mean() < 3.0


def test_missing_model_file_says_how_to_install(monkeypatch):
    with pytest.raises(DflError, match="pip install face_recognition_models"):
        module.dlib_model_path("no_such_model.dat")
    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DflError, match="face_recognition_models"):
        module.dlib_model_path(module.SHAPE_PREDICTOR_68)


def test_negative_upsample_is_rejected():
    with pytest.raises(DflError, match="upsample"):
        DlibBackend(upsample=-1)


def test_coarse_first_finds_big_faces_fast_and_small_faces_by_upsampling(astronaut):
    coarse, fine = DlibBackend(coarse_first=True, min_score=0.5), DlibBackend(coarse_first=False, min_score=0.5)
    big = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)  # face ~180 px: found at level 0
    a, b = find_faces(big, coarse, detect_size=1024)[0], find_faces(big, fine, detect_size=1024)[0]
    assert np.linalg.norm(a.landmarks - b.landmarks, axis=1).mean() < 1.5
    small = cv2.resize(astronaut, (300, 300), interpolation=cv2.INTER_AREA)  # face ~53 px: needs upsampling
    assert len(coarse.detect(small)) == 1
    assert DlibBackend(upsample=0).detect(small) == []
