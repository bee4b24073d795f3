"""The swap output header: the ``dfl_vfx:swap`` and ``dfl_vfx:faces`` attributes of every swapped frame.

This module owns their format (docs/dev/swap-output.md): :class:`SwapRecord` (how the frame was made) and
:class:`FaceRecord` (one composited face: where it came from and the plate-pixel numbers a host needs to redo the
live settings), each written as a JSON string attribute and read back typed. The engine writes them; the skip check
of reruns, ``serve``'s ``inspect``, ``eval`` and the contact sheets read them here, never as raw JSON. A malformed
header is a one-line :class:`~dfl_vfx.errors.DflError` naming the file. Keys this version does not know are kept
(``extra``) and written back, so a header round-trips exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.face.face_type import FaceType

SWAP_ATTRIBUTE = "dfl_vfx:swap"
FACES_ATTRIBUTE = "dfl_vfx:faces"
LANDMARK_COUNT = 68


class _Malformed(ValueError):
    """A field that is missing or of the wrong kind (turned into a DflError naming the file)."""


def _str(data: Mapping[str, Any], key: str) -> str:
    value = _get(data, key)
    if not isinstance(value, str):
        raise _Malformed(f"{key} must be a string, got {value!r}")
    return value


def _get(data: Mapping[str, Any], key: str) -> Any:
    if key not in data:
        raise _Malformed(f"{key} is missing")
    return data[key]


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        raise _Malformed(f"{key} must be an integer, got {value!r}")
    return int(value)


def _float(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Malformed(f"{key} must be a finite number, got {value!r}")
    return float(value)


def _box(value: Any, key: str) -> tuple[int, int, int, int]:
    """An end-exclusive pixel box; a box another writer gave in fractional pixels is read as the pixels it covers."""
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise _Malformed(f"{key} must be [x0, y0, x1, y1], got {value!r}")
    x0, y0, x1, y1 = (_float(v, key) for v in value)
    return math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)


def _array(value: Any, key: str, shape: tuple[int, int]) -> np.ndarray:
    try:
        array = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise _Malformed(f"{key} must be numbers of shape {list(shape)}") from None
    if array.shape != shape or not np.isfinite(array).all():
        raise _Malformed(f"{key} must be finite numbers of shape {list(shape)}, got shape {list(array.shape)}")
    return array


def _malformed(path: str | PathLike[str] | None, attribute: str, reason: object) -> DflError:
    where = f"{path}: " if path is not None else ""
    return DflError(f"{where}malformed {attribute} header ({reason}); re-render this frame with `dfl-vfx swap`")


def _json(text: object, path: str | PathLike[str] | None, attribute: str) -> Any:
    if not isinstance(text, str):
        raise _malformed(path, attribute, f"a {type(text).__name__}, not a JSON string")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _malformed(path, attribute, f"not JSON: {exc}") from None


SWAP_FIELDS = ("model", "model_sha256", "backend", "device", "merge_backend", "settings", "layers", "settings_hash",
               "frame", "dfl_vfx_version")


@dataclass(frozen=True)
class SwapRecord:
    """``dfl_vfx:swap``: the model, runtime, merge settings and layers a frame was swapped with."""

    model: str  # the model's file or folder name
    model_sha256: str
    backend: str  # the runtime backend (onnxruntime, torch, tensorrt)
    device: str  # the runtime's device (cpu, cuda:0)
    merge_backend: str  # cpu | cuda
    settings: dict[str, Any]  # the merge settings (MergeSettings.to_dict())
    layers: tuple[str, ...]
    settings_hash: str  # 16 hex digits: a rerun skips a frame whose output carries the same one
    frame: int
    dfl_vfx_version: str
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in SWAP_FIELDS}
        data["layers"] = list(self.layers)
        return data | self.extra

    def to_metadata(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> SwapRecord:
        """The record of a decoded attribute; a ValueError saying which field is wrong."""
        if not isinstance(data, dict):
            raise _Malformed(f"an object was expected, got {type(data).__name__}")
        settings = _get(data, "settings")
        if not isinstance(settings, dict):
            raise _Malformed(f"settings must be an object, got {settings!r}")
        layers = _get(data, "layers")
        if not isinstance(layers, list) or not all(isinstance(layer, str) for layer in layers):
            raise _Malformed(f"layers must be a list of names, got {layers!r}")
        return cls(model=_str(data, "model"), model_sha256=_str(data, "model_sha256"), backend=_str(data, "backend"),
                   device=_str(data, "device"), merge_backend=_str(data, "merge_backend"), settings=dict(settings),
                   layers=tuple(layers), settings_hash=_str(data, "settings_hash"),
                   frame=_int(_get(data, "frame"), "frame"), dfl_vfx_version=_str(data, "dfl_vfx_version"),
                   extra={k: v for k, v in data.items() if k not in SWAP_FIELDS})

    @classmethod
    def from_metadata(cls, text: object, path: str | PathLike[str] | None = None) -> SwapRecord:
        """The record of a ``dfl_vfx:swap`` attribute; a one-line DflError naming ``path`` when it is malformed."""
        data = _json(text, path, SWAP_ATTRIBUTE)
        try:
            return cls.from_dict(data)
        except _Malformed as exc:
            raise _malformed(path, SWAP_ATTRIBUTE, exc) from None


FACE_FIELDS = ("index", "track_id", "landmarks", "matrix", "resolution", "face_type", "bbox", "footprint",
               "px_per_unit", "erode_px", "clip_px", "blur_sigma")
LIVE_FIELDS = ("px_per_unit", "erode_px", "clip_px", "blur_sigma")


@dataclass(frozen=True, eq=False)
class FaceRecord:
    """One entry of ``dfl_vfx:faces``: a composited face, in absolute plate pixels (data-window origin included).

    The live-layer numbers (``footprint``, ``px_per_unit``, ``erode_px``, ``clip_px``, ``blur_sigma``) are None in
    headers written before the live layers existed.
    """

    index: int  # the face's index in its frame's detections
    track_id: int
    landmarks: np.ndarray  # (68, 2) float64
    matrix: np.ndarray  # (2, 3) float64: plate -> aligned at ``resolution`` (face scale included)
    resolution: int
    face_type: str  # as written (a FaceType name: dfl_vfx.face.face_type.FaceType.parse reads it)
    bbox: tuple[int, int, int, int]  # end exclusive: the region the paste could write
    footprint: tuple[int, int, int, int] | None = None  # end exclusive: outside it matte.A and raw are 0
    px_per_unit: float | None = None  # plate pixels per DeepFaceLab erode/blur unit
    erode_px: float | None = None  # disc radius the matte was eroded (> 0) or dilated (< 0) by
    clip_px: float | None = None  # disc radius the coverage was eroded by before it limited the matte
    blur_sigma: float | None = None  # Gaussian sigma of the matte's blur
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": self.index,
            "track_id": self.track_id,
            "landmarks": np.asarray(self.landmarks, np.float64).tolist(),
            "matrix": np.asarray(self.matrix, np.float64).tolist(),
            "resolution": self.resolution,
            "face_type": self.face_type,
            "bbox": list(self.bbox),
        }
        if self.footprint is not None:
            data["footprint"] = list(self.footprint)
        for name in LIVE_FIELDS:
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data | self.extra

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FaceRecord):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    @classmethod
    def from_dict(cls, data: Any) -> FaceRecord:
        """The record of one decoded entry; a ValueError saying which field is wrong."""
        if not isinstance(data, dict):
            raise _Malformed(f"a face must be an object, got {type(data).__name__}")
        face_type = _str(data, "face_type")
        try:
            FaceType.parse(face_type)
        except DflError:
            raise _Malformed(f"face_type {face_type!r} is not a face type") from None
        resolution = _int(_get(data, "resolution"), "resolution")
        if resolution < 1:
            raise _Malformed(f"resolution must be 1 or more, got {resolution}")
        live = {name: _float(data[name], name) if data.get(name) is not None else None for name in LIVE_FIELDS}
        return cls(index=_int(_get(data, "index"), "index"), track_id=_int(_get(data, "track_id"), "track_id"),
                   landmarks=_array(_get(data, "landmarks"), "landmarks", (LANDMARK_COUNT, 2)),
                   matrix=_array(_get(data, "matrix"), "matrix", (2, 3)), resolution=resolution, face_type=face_type,
                   bbox=_box(_get(data, "bbox"), "bbox"),
                   footprint=_box(data["footprint"], "footprint") if data.get("footprint") is not None else None,
                   **live, extra={k: v for k, v in data.items() if k not in FACE_FIELDS})


def faces_to_metadata(faces: list[FaceRecord]) -> str:
    """The ``dfl_vfx:faces`` attribute: a JSON list, in the order the faces were composited."""
    return json.dumps([face.to_dict() for face in faces])


def faces_from_metadata(text: object, path: str | PathLike[str] | None = None) -> list[FaceRecord]:
    """The records of a ``dfl_vfx:faces`` attribute; a one-line DflError naming ``path`` when it is malformed."""
    data = _json(text, path, FACES_ATTRIBUTE)
    if not isinstance(data, list):
        raise _malformed(path, FACES_ATTRIBUTE, f"a list was expected, got {type(data).__name__}")
    faces = []
    for number, entry in enumerate(data):
        try:
            faces.append(FaceRecord.from_dict(entry))
        except _Malformed as exc:
            raise _malformed(path, FACES_ATTRIBUTE, f"face {number}: {exc}") from None
    return faces


@dataclass(frozen=True)
class SwapHeader:
    """Both attributes of a swapped frame."""

    swap: SwapRecord
    faces: list[FaceRecord]

    def to_metadata(self) -> dict[str, str]:
        """The attributes to set on the output image (JSON strings)."""
        return {SWAP_ATTRIBUTE: self.swap.to_metadata(), FACES_ATTRIBUTE: faces_to_metadata(self.faces)}

    def to_dict(self) -> dict[str, Any]:
        """The attributes decoded: what their JSON holds, by attribute name."""
        return {SWAP_ATTRIBUTE: self.swap.to_dict(), FACES_ATTRIBUTE: [face.to_dict() for face in self.faces]}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, object],
                      path: str | PathLike[str] | None = None) -> SwapHeader | None:
        """The header of an image's metadata; None when it carries neither attribute (not a dfl_vfx swap), a
        one-line DflError naming ``path`` when one is missing or malformed."""
        if SWAP_ATTRIBUTE not in metadata and FACES_ATTRIBUTE not in metadata:
            return None
        for attribute in (SWAP_ATTRIBUTE, FACES_ATTRIBUTE):
            if attribute not in metadata:
                raise _malformed(path, attribute, "the attribute is missing")
        return cls(SwapRecord.from_metadata(metadata[SWAP_ATTRIBUTE], path),
                   faces_from_metadata(metadata[FACES_ATTRIBUTE], path))


def read_swap_record(metadata: Mapping[str, object], path: str | PathLike[str] | None = None) -> SwapRecord | None:
    """The ``dfl_vfx:swap`` record of an image's metadata, None without one (DflError when malformed)."""
    return SwapRecord.from_metadata(metadata[SWAP_ATTRIBUTE], path) if SWAP_ATTRIBUTE in metadata else None


def read_face_records(metadata: Mapping[str, object],
                      path: str | PathLike[str] | None = None) -> list[FaceRecord] | None:
    """The ``dfl_vfx:faces`` records of an image's metadata, None without them (DflError when malformed)."""
    return faces_from_metadata(metadata[FACES_ATTRIBUTE], path) if FACES_ATTRIBUTE in metadata else None


def written_with(path: Path, settings_hash: str) -> bool:
    """Whether ``path`` is a whole frame already swapped with these settings (a rerun then skips it)."""
    if not path.is_file():
        return False
    from dfl_vfx.io.image import read_header

    try:
        return output_settings_hash(read_header(path).metadata) == settings_hash
    except (DflError, OSError):
        return False


def output_settings_hash(metadata: Mapping[str, object]) -> str | None:
    """The settings hash an existing output frame was made with; None when it is not a dfl_vfx swap or its header
    is malformed (either way the frame is swapped again)."""
    try:
        record = read_swap_record(metadata)
    except DflError:
        return None
    return None if record is None else record.settings_hash
