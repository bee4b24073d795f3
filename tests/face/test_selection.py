"""Face selection on synthetic face lists."""

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.detect import DetectedFace
from dfl_vfx.face.selection import FaceFilter, largest, matching_identity, nearest_to


def face(left, top, side) -> DetectedFace:
    return DetectedFace(rect=(left, top, left + side, top + side), score=1.0, landmarks=np.zeros((68, 2)))


# Sizes 100, 60, 60 (tie: left first), 20; centres (150,150), (530,530), (30,230), (910,110).
BIG, MID_RIGHT, MID_LEFT, SMALL = face(100, 100, 100), face(500, 500, 60), face(0, 200, 60), face(900, 100, 20)
FACES = [SMALL, MID_RIGHT, BIG, MID_LEFT]


def unit(index: int) -> np.ndarray:
    vector = np.zeros(128)
    vector[index] = 1.0
    return vector


# Distances to reference unit(0): SMALL 0.0, MID_RIGHT 0.3, BIG 1.414 (another person), MID_LEFT 0.5.
EMBEDDINGS = np.stack([unit(0), unit(0) * 0.7, unit(1), unit(0) * 0.5])
REFERENCE = unit(0)


def test_largest_orders_by_area_then_left():
    assert largest(FACES) == [BIG]
    assert largest(FACES, n=3) == [BIG, MID_LEFT, MID_RIGHT]
    assert largest(FACES, n=0) == [BIG, MID_LEFT, MID_RIGHT, SMALL]
    assert largest([]) == []


def test_nearest_to_point():
    assert nearest_to(FACES, (900.0, 120.0)) == [SMALL]
    assert nearest_to(FACES, (100.0, 200.0), n=2) == [BIG, MID_LEFT]  # 70.7 and 75.7 px away


def test_matching_identity_keeps_close_faces_closest_first():
    assert matching_identity(FACES, EMBEDDINGS, REFERENCE) == [SMALL, MID_RIGHT, MID_LEFT]
    assert matching_identity(FACES, EMBEDDINGS, REFERENCE, threshold=0.4) == [SMALL, MID_RIGHT]
    # Several references: the minimum distance counts, so BIG matches unit(1).
    assert matching_identity(FACES, EMBEDDINGS, np.stack([unit(1), unit(5)]), threshold=0.1) == [BIG]
    with pytest.raises(ValueError, match="3 faces but 4 embeddings"):
        matching_identity(FACES[:3], EMBEDDINGS, REFERENCE)


def test_filter_modes():
    assert FaceFilter().apply(FACES) == FACES
    assert FaceFilter(max_faces=2).apply(FACES) == [SMALL, MID_RIGHT]
    assert FaceFilter(mode="largest").apply(FACES) == [BIG]
    assert FaceFilter(mode="largest", max_faces=2).apply(FACES) == [BIG, MID_LEFT]
    assert FaceFilter(mode="nearest", point=(520.0, 520.0)).apply(FACES) == [MID_RIGHT]
    identity = FaceFilter(mode="identity", threshold=0.55, max_faces=2)
    assert identity.apply(FACES, embeddings=EMBEDDINGS, reference=REFERENCE) == [SMALL, MID_RIGHT]


def test_filter_validation():
    with pytest.raises(DflError, match="'biggest'"):
        FaceFilter(mode="biggest")
    with pytest.raises(DflError, match="needs a point"):
        FaceFilter(mode="nearest")
    with pytest.raises(DflError, match="max_faces"):
        FaceFilter(max_faces=-1)
    identity = FaceFilter(mode="identity")
    with pytest.raises(DflError, match="reference"):
        identity.apply(FACES, embeddings=EMBEDDINGS)
    with pytest.raises(DflError, match="embedding"):
        identity.apply(FACES, reference=REFERENCE)
    changed = FaceFilter(mode="nearest", point=(0.0, 0.0))
    changed.point = None
    with pytest.raises(DflError, match="needs a point"):
        changed.apply(FACES)


def test_largest_breaks_area_ties_by_score() -> None:
    # HOG returns boxes of quantised sizes: a weak false find can tie a real face on area.
    weak = DetectedFace(rect=(100, 300, 172, 372), score=0.34, landmarks=np.zeros((68, 2)))
    real = DetectedFace(rect=(140, 60, 212, 132), score=1.26, landmarks=np.zeros((68, 2)))
    assert largest([weak, real], 1) == [real]
