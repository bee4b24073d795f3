"""Per-face metadata of an aligned face: where it came from, its landmarks, transform and pose, as JSON.

The JSON travels inside the face image (header attribute ``dfl_vfx:face``), so a face keeps its metadata when
artists rename, delete or sort files by hand. Floats are written with Python's shortest round-trip repr, so
``from_json(meta.to_json()) == meta`` exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import numpy as np

from dfl_vfx.errors import DflError

FACE_ATTRIBUTE = "dfl_vfx:face"
POSE_KEYS = ("pitch", "yaw", "roll")


def _float_matrix(value: Any, shape: tuple[int, ...], name: str) -> list:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    return array.tolist()


def _numpy_to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"face metadata value of type {type(value).__name__} is not JSON serialisable")


@dataclass
class FaceMetadata:
    """Everything known about one aligned face; arrays are stored as nested lists of floats."""

    face_type: str  # FaceType.cli_name, e.g. "whole_face"
    size: int  # aligned image side in pixels
    source_filename: str  # frame file name the face was cut from
    source_frame: int | None  # frame number, None for a still
    face_index: int  # index of the face within its frame
    source_rect: list[float]  # detector rect l, t, r, b in frame pixels
    source_landmarks: list[list[float]]  # 68 x 2, frame pixels
    landmarks: list[list[float]]  # 68 x 2, aligned pixels
    image_to_face_mat: list[list[float]]  # 2 x 3 affine frame -> aligned
    pose: dict[str, float]  # pitch, yaw, roll in radians
    detector: str
    score: float
    colorspace: str  # working space of the aligned pixels
    plate_colorspace: str  # colourspace of the source plate
    eyebrows_expand_mod: float = 1.0
    track_id: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.size = int(self.size)
        self.face_index = int(self.face_index)
        self.source_frame = None if self.source_frame is None else int(self.source_frame)
        self.source_rect = _float_matrix(self.source_rect, (4,), "source_rect")
        self.source_landmarks = _float_matrix(self.source_landmarks, (68, 2), "source_landmarks")
        self.landmarks = _float_matrix(self.landmarks, (68, 2), "landmarks")
        self.image_to_face_mat = _float_matrix(self.image_to_face_mat, (2, 3), "image_to_face_mat")
        missing = [key for key in POSE_KEYS if key not in self.pose]
        if missing:
            raise ValueError(f"pose lacks {', '.join(missing)}")
        self.pose = {key: float(self.pose[key]) for key in POSE_KEYS}
        self.score = float(self.score)
        self.eyebrows_expand_mod = float(self.eyebrows_expand_mod)
        self.track_id = int(self.track_id)
        self.extra = dict(self.extra)

    def landmarks_array(self) -> np.ndarray:
        """(68, 2) float64 landmarks in aligned-image pixels."""
        return np.array(self.landmarks, dtype=np.float64)

    def source_landmarks_array(self) -> np.ndarray:
        """(68, 2) float64 landmarks in frame pixels."""
        return np.array(self.source_landmarks, dtype=np.float64)

    def matrix(self) -> np.ndarray:
        """(2, 3) float64 affine taking frame pixels to aligned pixels."""
        return np.array(self.image_to_face_mat, dtype=np.float64)

    def pose_degrees(self) -> dict[str, float]:
        """Pitch, yaw and roll in degrees."""
        return {key: math.degrees(value) for key, value in self.pose.items()}

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "face metadata") -> FaceMetadata:
        """Build from a dict; unknown keys go to ``extra``. ``source`` names the file in errors."""
        if not isinstance(data, dict):
            raise DflError(f"{source}: face metadata is not a JSON object; re-extract this face")
        names = {f.name for f in fields(cls)}
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise DflError(f"{source}: face metadata lacks {', '.join(missing)}; re-extract this face")
        known = {key: value for key, value in data.items() if key in names and key != "extra"}
        extra = dict(data.get("extra") or {})
        extra.update({key: value for key, value in data.items() if key not in names})
        try:
            return cls(**known, extra=extra)
        except (TypeError, ValueError) as exc:
            raise DflError(f"{source}: invalid face metadata ({exc}); re-extract this face") from None

    def to_json(self) -> str:
        """Compact JSON (ASCII, so it fits a PNG text chunk); numpy values in ``extra`` become lists/numbers."""
        return json.dumps(self.to_dict(), separators=(",", ":"), default=_numpy_to_json)

    @classmethod
    def from_json(cls, text: str, source: str = "face metadata") -> FaceMetadata:
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise DflError(f"{source}: face metadata is not valid JSON ({exc}); re-extract this face") from None
        return cls.from_dict(data, source)
