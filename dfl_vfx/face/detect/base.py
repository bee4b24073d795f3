"""Face detection interface: the backend contract, option declarations and `find_faces`.

A backend finds face rectangles and fits 68 iBUG landmarks. `find_faces` drives any backend the same way:
detection on a downscaled working copy, landmarks refined on the full-resolution frame.

Coordinates follow the house convention: x right, y down, integer values at pixel centres. Rects are
(left, top, right, bottom) in that convention, so mapping between a working copy and the full frame uses
`full = (small + 0.5) * scale - 0.5` for rect edges and landmarks alike.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from dfl_vfx.errors import DflError

Rect = tuple[float, float, float, float]


@dataclass
class DetectedFace:
    """One face in a frame: rect and landmarks in full-resolution image pixels."""

    rect: Rect  # (left, top, right, bottom) in full-res image pixels
    score: float
    landmarks: np.ndarray  # (68, 2) float64, full-res pixels

    @property
    def width(self) -> float:
        return self.rect[2] - self.rect[0]

    @property
    def height(self) -> float:
        return self.rect[3] - self.rect[1]

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.rect[0] + self.rect[2]) / 2.0, (self.rect[1] + self.rect[3]) / 2.0)


@dataclass(frozen=True)
class BackendOption:
    """One backend option: its default (which also fixes its type), help text and allowed values."""

    default: Any
    help: str
    choices: tuple | None = None


class FaceBackend(abc.ABC):
    """A face detector plus 68-point landmarker.

    Subclasses declare `name`, `description` and `options`; the constructor takes those options as keywords,
    coerces each value to the type of its default (so CLI strings work) and checks choices. The resolved
    values are in `self.config`.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    options: ClassVar[dict[str, BackendOption]] = {}

    def __init__(self, **options: Any) -> None:
        self.config: dict[str, Any] = {key: spec.default for key, spec in self.options.items()}
        for key, value in options.items():
            if key not in self.options:
                valid = ", ".join(self.options) or "none"
                raise DflError(f"{self.name} backend: unknown option '{key}'; valid options: {valid}")
            self.config[key] = _coerce_option(self.name, key, self.options[key], value)

    @abc.abstractmethod
    def detect(self, image: np.ndarray) -> list[tuple[Rect, float]]:
        """Face rects and scores in `image` pixels; `image` is uint8 RGB (H, W, 3)."""

    @abc.abstractmethod
    def landmarks(self, image: np.ndarray, rect: Rect) -> np.ndarray:
        """(68, 2) float64 landmarks, in `image` pixels, for the face in `rect`."""


def _coerce_option(backend: str, key: str, spec: BackendOption, value: Any) -> Any:
    kind = type(spec.default)
    try:
        if kind is bool and isinstance(value, str):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            coerced: Any = value.lower() in ("1", "true", "yes", "on")
        else:
            coerced = kind(value)
    except (TypeError, ValueError):
        raise DflError(
            f"{backend} backend: option '{key}' needs a {kind.__name__}, got {value!r}"
        ) from None
    if spec.choices is not None and coerced not in spec.choices:
        valid = ", ".join(str(c) for c in spec.choices)
        raise DflError(f"{backend} backend: option '{key}' must be one of {valid}, got {value!r}")
    return coerced


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """The image as contiguous uint8 RGB (H, W, 3); grey (H, W) or (H, W, 1) is replicated, alpha dropped."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise DflError(f"face detection needs an 8-bit image, got dtype {image.dtype}; convert the plate first")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise DflError(f"face detection needs an RGB or grey image, got shape {image.shape}")
    return np.ascontiguousarray(image[:, :, :3])


def scale_points(points: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """Map (..., 2) pixel-centre coordinates from one image to another `scale` times larger."""
    points = np.asarray(points, dtype=np.float64)
    scale = np.array([scale_x, scale_y])
    return (points + 0.5) * scale - 0.5


def _scale_rect(rect: Rect, scale_x: float, scale_y: float) -> Rect:
    corners = scale_points(np.array([[rect[0], rect[1]], [rect[2], rect[3]]]), scale_x, scale_y)
    return (float(corners[0, 0]), float(corners[0, 1]), float(corners[1, 0]), float(corners[1, 1]))


def detect_candidates(
    working: np.ndarray, full_shape: tuple[int, int], backend: FaceBackend, min_face: int = 40
) -> list[tuple[Rect, float]]:
    """Detect on a working copy of a (height, width) = `full_shape` frame; rects come back in full-res pixels.

    Rects smaller than `min_face` full-res pixels on either side are dropped; the rest are ordered largest
    first, ties by higher score, then left to right.
    """
    working = as_rgb_uint8(working)
    scale_x = full_shape[1] / working.shape[1]
    scale_y = full_shape[0] / working.shape[0]
    candidates = []
    for rect, score in backend.detect(working):
        full_rect = _scale_rect(rect, scale_x, scale_y)
        if full_rect[2] - full_rect[0] < min_face or full_rect[3] - full_rect[1] < min_face:
            continue
        candidates.append((full_rect, float(score)))
    # Largest first; HOG boxes come in quantised sizes, so equal areas go by score, then left to right.
    candidates.sort(key=lambda item: (-(item[0][2] - item[0][0]) * (item[0][3] - item[0][1]), -item[1], item[0][0]))
    return candidates


def find_faces(
    image: np.ndarray,
    backend: FaceBackend,
    detect_size: int = 640,
    min_face: int = 40,
    max_faces: int = 0,
) -> list[DetectedFace]:
    """Detect faces on a working copy no larger than `detect_size`, then fit landmarks at full resolution.

    Faces smaller than `min_face` full-res pixels on either side are dropped; the rest come back largest
    first (ties by score, then left to right), at most `max_faces` of them when that is > 0.
    """
    if detect_size <= 0:
        raise DflError(f"detect_size must be a positive number of pixels, got {detect_size}")
    if max_faces < 0:
        raise DflError(f"max_faces must be 0 (no limit) or more, got {max_faces}")
    image = as_rgb_uint8(image)
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest > detect_size:
        factor = detect_size / longest
        small_size = (max(1, round(width * factor)), max(1, round(height * factor)))
        working = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    else:
        working = image

    candidates = detect_candidates(working, (height, width), backend, min_face)
    if max_faces > 0:
        candidates = candidates[:max_faces]
    faces = []
    for rect, score in candidates:
        points = np.asarray(backend.landmarks(image, rect), dtype=np.float64).reshape(68, 2)
        faces.append(DetectedFace(rect=rect, score=score, landmarks=points))
    return faces
