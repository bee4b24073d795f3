"""Choosing which detected faces to keep: largest, nearest to a point, or matching a reference identity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.face.detect.base import DetectedFace

MODES = ("all", "largest", "nearest", "identity")


def _take(faces: list[DetectedFace], n: int) -> list[DetectedFace]:
    return faces[:n] if n > 0 else faces


def largest(faces: list[DetectedFace], n: int = 1) -> list[DetectedFace]:
    """The `n` largest faces by rect area (ties: higher score, then left to right); n = 0 keeps all, sorted.

    Detectors such as HOG return boxes of quantised sizes, so equal areas are common.
    """
    return _take(sorted(faces, key=lambda face: (-face.area, -face.score, face.rect[0])), n)


def nearest_to(faces: list[DetectedFace], point: tuple[float, float], n: int = 1) -> list[DetectedFace]:
    """The `n` faces whose rect centre is closest to `point` (x, y); n = 0 keeps all, sorted."""
    px, py = point

    def distance(face: DetectedFace) -> float:
        cx, cy = face.center
        return float(np.hypot(cx - px, cy - py))

    return _take(sorted(faces, key=distance), n)


def identity_distances(embeddings: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """For each embedding row, its smallest Euclidean distance to any reference descriptor."""
    embeddings = np.asarray(embeddings, dtype=np.float64).reshape(-1, 128)
    reference = np.asarray(reference, dtype=np.float64).reshape(-1, 128)
    if len(embeddings) == 0 or len(reference) == 0:
        return np.full(len(embeddings), np.inf)
    pairwise = np.linalg.norm(embeddings[:, None, :] - reference[None, :, :], axis=2)
    return pairwise.min(axis=1)


def matching_identity(
    faces: list[DetectedFace], embeddings: np.ndarray, reference: np.ndarray, threshold: float = 0.6
) -> list[DetectedFace]:
    """Faces within `threshold` of any reference descriptor, closest first; `embeddings` rows match `faces`."""
    distances = identity_distances(embeddings, reference)
    if len(distances) != len(faces):
        raise ValueError(f"{len(faces)} faces but {len(distances)} embeddings")
    order = np.argsort(distances, kind="stable")
    return [faces[i] for i in order if distances[i] < threshold]


@dataclass
class FaceFilter:
    """Which faces of a frame to keep.

    mode 'all' keeps every face (at most `max_faces` when > 0); 'largest' and 'nearest' (to `point`) keep
    `max_faces` faces, or one when it is 0; 'identity' keeps faces within `threshold` of a reference
    descriptor, closest first, at most `max_faces` when > 0.
    """

    mode: str = "all"
    max_faces: int = 0
    point: tuple[float, float] | None = None
    threshold: float = 0.6

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.mode not in MODES:
            raise DflError(f"face filter: unknown mode '{self.mode}'; choose one of {', '.join(MODES)}")
        if self.max_faces < 0:
            raise DflError(f"face filter: max_faces must be 0 (no limit) or more, got {self.max_faces}")
        if self.mode == "nearest" and self.point is None:
            raise DflError("face filter: mode 'nearest' needs a point (x, y) in frame pixels")
        if self.mode == "identity" and not self.threshold > 0:
            raise DflError(f"face filter: identity threshold must be positive, got {self.threshold}")

    def apply(
        self,
        faces: list[DetectedFace],
        embeddings: np.ndarray | None = None,
        reference: np.ndarray | None = None,
    ) -> list[DetectedFace]:
        """The kept faces; 'identity' needs `embeddings` (one row per face) and `reference` descriptors."""
        self.validate()
        if self.mode == "largest":
            return largest(faces, self.max_faces or 1)
        if self.mode == "nearest":
            return nearest_to(faces, self.point, self.max_faces or 1)
        if self.mode == "identity":
            if reference is None or np.asarray(reference).size == 0:
                raise DflError("face filter: mode 'identity' needs reference faces (none were given)")
            if embeddings is None:
                raise DflError("face filter: mode 'identity' needs an embedding for every detected face")
            return _take(matching_identity(faces, embeddings, reference, self.threshold), self.max_faces)
        return _take(list(faces), self.max_faces)
