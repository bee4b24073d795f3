"""Face detection interface: the backend contract, option declarations and `find_faces`.

A backend finds face rectangles and fits 68 iBUG landmarks. `find_faces` drives any backend the same way:
detection on a downscaled working copy, landmarks refined on the full-resolution frame.

How far the working copy is downscaled: by default (``AUTO``) no further than keeps a face of ``min_face``
plate pixels at the backend's `smallest_face` (dlib HOG: 72 px), nor below 640 px; ``min_face`` itself defaults
to a tenth of the frame's shorter side (at least 40 px). `detection_plan` says which copies a frame is searched on.

Coordinates follow the house convention: x right, y down, integer values at pixel centres. Rects are
(left, top, right, bottom) in that convention, so mapping between a working copy and the full frame uses
`full = (small + 0.5) * scale - 0.5` for rect edges and landmarks alike.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from dfl_vfx.errors import DflError

Rect = tuple[float, float, float, float]

AUTO = 0  # detect_size / min_face value meaning "derived from the frame and the backend"
AUTO_MIN_FACE_FRACTION = 0.1  # auto min_face: this fraction of the frame's shorter side...
AUTO_MIN_FACE_FLOOR = 40  # ...but never below this many pixels
AUTO_MIN_COPY = 640  # an automatic detection copy is never smaller than this (the fixed size of old), longest side


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
    smallest_face: ClassVar[float] = 80.0  # smallest face side, in input pixels, found without upsampling

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

    def min_detectable(self) -> float:
        """Smallest face side, in input pixels, this backend finds without upsampling the input."""
        return float(self.smallest_face)

    def detect_at_least(self, image: np.ndarray, min_size: float) -> list[tuple[Rect, float]]:
        """`detect`, told that faces under `min_size` input pixels are not wanted, so it may skip looking for them.

        The base class simply detects; a backend that upsamples to find small faces upsamples no more than needed.
        """
        return self.detect(image)


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


def auto_min_face(shape: tuple[int, ...]) -> int:
    """The default smallest face, in pixels, of a (height, width) frame: a tenth of its shorter side, >= 40."""
    return max(AUTO_MIN_FACE_FLOOR, round(AUTO_MIN_FACE_FRACTION * min(shape[0], shape[1])))


def resolve_min_face(min_face: int, shape: tuple[int, ...]) -> int:
    """`min_face`, or the automatic one for this (height, width) frame when it is ``AUTO`` (0)."""
    if min_face < 0:
        raise DflError(f"--min-face {min_face} must be a face size in pixels, or auto")
    return auto_min_face(shape) if min_face == AUTO else int(min_face)


def detection_plan(
    shape: tuple[int, ...], backend: FaceBackend, detect_size: int = AUTO, min_face: int = AUTO, enough: int = 0
) -> list[tuple[float, int]]:
    """(downscale factor <= 1, smallest face kept in pixels) of each copy a (height, width) frame is searched on.

    An explicit `detect_size` gives one copy whose longest side is at most that. ``AUTO`` gives the copy that
    keeps a `min_face` face at the backend's smallest detectable size (but not under 640 px). With `enough` > 0
    (only the `enough` largest faces are wanted) a copy half as large, which finds faces of twice `min_face`, is
    searched first, and the fine copy only when the coarse one held fewer than `enough` faces: no smaller face
    could outrank them.
    """
    if detect_size < 0:
        raise DflError(f"--detect-size {detect_size} must be a number of pixels, or auto")
    longest = max(shape[0], shape[1])
    smallest = resolve_min_face(min_face, shape)
    if detect_size != AUTO:
        return [(min(1.0, detect_size / longest), smallest)]
    floor = AUTO_MIN_COPY / longest
    # Half a pixel under the detector's smallest box, so that box, scaled back, is not under min_face.
    fine = min(1.0, max((backend.min_detectable() - 0.5) / smallest, floor))
    coarse = max(fine / 2, floor)
    if enough > 0 and coarse < fine:
        return [(coarse, math.ceil(smallest * fine / coarse)), (fine, smallest)]
    return [(fine, smallest)]


def downscaled(image: np.ndarray, factor: float) -> np.ndarray:
    """`image` resized by `factor` (<= 1) with area averaging; the image itself when factor is 1."""
    if factor >= 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def detect_candidates(
    working: np.ndarray, full_shape: tuple[int, int], backend: FaceBackend, min_face: int = 40
) -> list[tuple[Rect, float]]:
    """Detect on a working copy of a (height, width) = `full_shape` frame; rects come back in full-res pixels.

    Rects smaller than `min_face` full-res pixels on either side are dropped; the rest are ordered largest
    first, ties by higher score, then left to right. The backend is told the size under which it need not look.
    """
    working = as_rgb_uint8(working)
    scale_x = full_shape[1] / working.shape[1]
    scale_y = full_shape[0] / working.shape[0]
    candidates = []
    for rect, score in backend.detect_at_least(working, min_face / max(scale_x, scale_y)):
        full_rect = _scale_rect(rect, scale_x, scale_y)
        if full_rect[2] - full_rect[0] < min_face or full_rect[3] - full_rect[1] < min_face:
            continue
        candidates.append((full_rect, float(score)))
    # Largest first; HOG boxes come in quantised sizes, so equal areas go by score, then left to right.
    candidates.sort(key=lambda item: (-(item[0][2] - item[0][0]) * (item[0][3] - item[0][1]), -item[1], item[0][0]))
    return candidates


def plan_candidates(
    image: np.ndarray,
    to_display: Callable[[np.ndarray], np.ndarray],
    backend: FaceBackend,
    detect_size: int = AUTO,
    min_face: int = AUTO,
    enough: int = 0,
) -> list[tuple[Rect, float]]:
    """Face rects (full-res pixels) of `image` searched on the copies of `detection_plan`, largest first.

    `to_display` turns a downscaled copy of `image` into the uint8 RGB the backend sees (identity for uint8).
    """
    shape = image.shape[:2]
    candidates: list[tuple[Rect, float]] = []
    for factor, smallest in detection_plan(shape, backend, detect_size, min_face, enough):
        candidates = detect_candidates(to_display(downscaled(image, factor)), shape, backend, smallest)
        if enough and len(candidates) >= enough:
            break
    return candidates


def find_faces(
    image: np.ndarray,
    backend: FaceBackend,
    detect_size: int = AUTO,
    min_face: int = AUTO,
    max_faces: int = 0,
) -> list[DetectedFace]:
    """Detect faces on downscaled copies (see `detection_plan`), then fit landmarks at full resolution.

    Faces smaller than `min_face` full-res pixels on either side are dropped; the rest come back largest
    first (ties by score, then left to right), at most `max_faces` of them when that is > 0.
    """
    if max_faces < 0:
        raise DflError(f"max_faces must be 0 (no limit) or more, got {max_faces}")
    image = as_rgb_uint8(image)
    candidates = plan_candidates(image, as_rgb_uint8, backend, detect_size, min_face, max_faces)
    if max_faces > 0:
        candidates = candidates[:max_faces]
    faces = []
    for rect, score in candidates:
        points = np.asarray(backend.landmarks(image, rect), dtype=np.float64).reshape(68, 2)
        faces.append(DetectedFace(rect=rect, score=score, landmarks=points))
    return faces
