"""dlib face backend: HOG or MMOD-CNN detection plus the 68-point shape predictor.

Models come from the installed `face_recognition_models` package, loaded by path (never downloaded) and
cached once per process. Licence note: the 68-point predictor is trained on iBUG 300-W data, which may
exclude commercial use; studios should treat it as a research/test model.
"""

from __future__ import annotations

import importlib.util
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

    def detect(self, image: np.ndarray) -> list[tuple[Rect, float]]:
        image = as_rgb_uint8(image)
        upsample = self.config["upsample"]
        min_score = self.config["min_score"]
        levels = [0, upsample] if self.config["coarse_first"] and upsample > 0 else [upsample]
        for level in levels:
            if self.config["model"] == "cnn":
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
