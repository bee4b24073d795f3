"""dlib face backend: HOG or MMOD-CNN detection plus the 68-point shape predictor.

Models come from the installed `face_recognition_models` package, loaded by path (never downloaded) and
cached once per process. dlib releases the GIL while it detects, and a detector keeps per-call state in itself
(the HOG scanner loads the image into the object, the CNN its layer outputs): two threads running the shared HOG
detector at once crash the process. So each detector runs under its own lock; the shape predictor's prediction
is const in dlib and is shared freely.

Licence note: the 68-point predictor is trained on iBUG 300-W data, which may exclude commercial use; studios
should treat it as a research/test model.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import dlib
import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.face.detect.base import BackendOption, FaceBackend, Rect, as_rgb_uint8

SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
MMOD_DETECTOR = "mmod_human_face_detector.dat"
FACE_RECOGNITION_RESNET = "dlib_face_recognition_resnet_model_v1.dat"
# Smallest rect width (right - left) each detector reports without upsampling, measured on dlib 20 (the HOG
# window is 80 px with a 72 px box; the MMOD CNN's box is 80 px); faces down to ~0.8 of it are still found.
SMALLEST_FACE = {"hog": 72.0, "cnn": 79.0}
_DETECTOR_LOCKS = {"hog": threading.Lock(), "cnn": threading.Lock()}


def dlib_model_path(filename: str) -> Path:
    """Path of one `.dat` model shipped by `face_recognition_models`; DflError when it is not installed."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "models" / filename
        if path.is_file():
            return path
    raise DflError(f"dlib model {filename} not found; run `pip install face_recognition_models`")


@lru_cache(maxsize=1)
def _hog_detector() -> dlib.fhog_object_detector:
    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def _cnn_detector() -> dlib.cnn_face_detection_model_v1:
    return dlib.cnn_face_detection_model_v1(str(dlib_model_path(MMOD_DETECTOR)))


@lru_cache(maxsize=1)
def _shape_predictor() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(dlib_model_path(SHAPE_PREDICTOR_68)))


def _dlib_rect(rect: Rect) -> dlib.rectangle:
    left, top, right, bottom = (round(v) for v in rect)
    return dlib.rectangle(left, top, right, bottom)


class DlibBackend(FaceBackend):
    """dlib HOG (default) or MMOD CNN detector with the 68-point shape predictor."""

    name: ClassVar[str] = "dlib"
    description: ClassVar[str] = "dlib HOG or MMOD-CNN detector + 68-point shape predictor (CPU, offline)"
    options: ClassVar[dict[str, BackendOption]] = {
        "model": BackendOption("hog", "detector: hog (fast, frontal) or cnn (MMOD, ~2 s/frame)", ("hog", "cnn")),
        "upsample": BackendOption(1, "times the working image is doubled before detection (finds smaller faces)"),
        "min_score": BackendOption(0.0, "drop detections scoring below this (HOG margin or CNN confidence)"),
        "coarse_first": BackendOption(
            True, "try without upsampling first and upsample only when nothing is found (about 4x faster when "
            "faces are over ~80 px in the detection copy; false finds every small face next to a big one)"
        ),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.config["upsample"] < 0:
            raise DflError(f"dlib backend: option 'upsample' must be 0 or more, got {self.config['upsample']}")

    def min_detectable(self) -> float:
        return SMALLEST_FACE[self.config["model"]]

    def detect(self, image: np.ndarray) -> list[tuple[Rect, float]]:
        return self._detect(image, self.config["upsample"])

    def detect_at_least(self, image: np.ndarray, min_size: float) -> list[tuple[Rect, float]]:
        """Upsample no more than needed to see faces of `min_size` pixels (and never more than `upsample`)."""
        needed = 0
        smallest = self.min_detectable()
        if min_size + 1.0 < smallest:  # one pixel of slack for the rounding of a downscaled copy's size
            needed = math.ceil(math.log2(smallest / max(min_size + 1.0, 1.0)))
        return self._detect(image, min(self.config["upsample"], needed))

    def _detect(self, image: np.ndarray, upsample: int) -> list[tuple[Rect, float]]:
        image = as_rgb_uint8(image)
        min_score = self.config["min_score"]
        model = self.config["model"]
        levels = [0, upsample] if self.config["coarse_first"] and upsample > 0 else [upsample]
        for level in levels:
            with _DETECTOR_LOCKS[model]:
                if model == "cnn":
                    found = [(d.rect, d.confidence) for d in _cnn_detector()(image, level)]
                else:
                    rects, scores, _ = _hog_detector().run(image, level, min_score)
                    found = list(zip(rects, scores, strict=True))
            if any(score >= min_score for _, score in found):
                break
        return [
            ((float(r.left()), float(r.top()), float(r.right()), float(r.bottom())), float(score))
            for r, score in found
            if score >= min_score
        ]

    def landmarks(self, image: np.ndarray, rect: Rect) -> np.ndarray:
        shape = _shape_predictor()(as_rgb_uint8(image), _dlib_rect(rect))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
