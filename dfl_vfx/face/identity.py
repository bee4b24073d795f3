"""Face identity embeddings: dlib's 128-d ResNet descriptor computed from 68 landmarks.

Two faces are the same person when the Euclidean distance between their descriptors is below 0.6 (dlib's
published threshold). The model ships with `face_recognition_models` and is loaded once per process.
"""

from __future__ import annotations

from functools import lru_cache

import dlib
import numpy as np

from dfl_vfx.face.detect.base import DetectedFace, as_rgb_uint8
from dfl_vfx.face.detect.dlib_backend import FACE_RECOGNITION_RESNET, dlib_model_path

SAME_PERSON_DISTANCE = 0.6


@lru_cache(maxsize=1)
def _recognition_model() -> dlib.face_recognition_model_v1:
    return dlib.face_recognition_model_v1(str(dlib_model_path(FACE_RECOGNITION_RESNET)))


def _shape_from_landmarks(landmarks: np.ndarray) -> dlib.full_object_detection:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"identity embedding needs (68, 2) landmarks, got shape {points.shape}")
    rounded = np.rint(points).astype(int)
    left, top = rounded.min(axis=0)
    right, bottom = rounded.max(axis=0)
    parts = dlib.points([dlib.point(int(x), int(y)) for x, y in rounded])
    return dlib.full_object_detection(dlib.rectangle(int(left), int(top), int(right), int(bottom)), parts)


class FaceEmbedder:
    """128-d identity descriptors for faces described by 68 landmarks."""

    def __init__(self) -> None:
        self._model = _recognition_model()

    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(128,) float64 descriptor of the face whose 68 landmarks (image pixels) are given."""
        descriptor = self._model.compute_face_descriptor(
            as_rgb_uint8(image), _shape_from_landmarks(landmarks), num_jitters=0
        )
        return np.array(descriptor, dtype=np.float64)

    def embed_faces(self, image: np.ndarray, faces: list[DetectedFace]) -> np.ndarray:
        """(N, 128) descriptors, one row per face, in the order given."""
        image = as_rgb_uint8(image)
        if not faces:
            return np.zeros((0, 128), dtype=np.float64)
        return np.stack([self.embed(image, face.landmarks) for face in faces])

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> float:
        """Euclidean distance between two descriptors; below 0.6 means the same person."""
        return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))
