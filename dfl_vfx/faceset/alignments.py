"""``FACESET/alignments.json``: the faces extraction found in each frame, and each frame's tracked faces.

This module owns the file; `dfl-vfx extract` writes it (a cache of its detection pass and the plan of its align
pass) and reads it back on a rerun, `dfl-vfx swap --faceset` and `dfl-vfx serve` read the tracks. Layout::

    {"format": "dfl_vfx.alignments", "version": 1, "created_by": "dfl_vfx 0.4.0",
     "detection": {...},                         # the extract options that change detections (the cache key)
     "frames": {"1001": {"frame": 1001, "faces": [{"rect": [l, t, r, b], "score": 1.2, "landmarks": [[x, y]]*68}],
                         "plate_colorspace": "ACEScg", "warnings": [], "error": null}},
     "tracks": {"1001": [{"name": "plate.1001_0", "face_index": 0, "track_id": 0, "rect": [l, t, r, b],
                          "score": 1.2, "landmarks": [[x, y]]*68, "raw_landmarks": [[x, y]]*68}]}}

Coordinates are absolute plate pixels (the data window's origin included). ``frames`` holds pass-1 detections,
``tracks`` the faces written: linked into tracks, ``landmarks`` smoothed over time (``raw_landmarks`` as
detected). A file that is not of this form is refused with one line naming it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfl_vfx import __version__
from dfl_vfx.errors import DflError
from dfl_vfx.io.atomic import write_text_atomic

ALIGNMENTS_FILE = "alignments.json"
FORMAT = "dfl_vfx.alignments"
VERSION = 1  # what this module writes; files of a later version are refused


def _first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def _points(value: Any, what: str) -> list[list[float]]:
    points = np.asarray(value, np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise ValueError(f"{what} must be 68 finite (x, y) points, got shape {points.shape}")
    return points.tolist()


def _rect(value: Any, what: str) -> list[float]:
    rect = [float(v) for v in value]
    if len(rect) != 4:
        raise ValueError(f"{what} must be [left, top, right, bottom], got {len(rect)} numbers")
    return rect


@dataclass
class FoundFace:
    """A face detection found in a frame (pass 1), absolute plate pixels."""

    rect: list[float]
    score: float
    landmarks: list[list[float]]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FoundFace:
        return cls(_rect(data["rect"], "rect"), float(data["score"]), _points(data["landmarks"], "landmarks"))


@dataclass
class FrameFaces:
    """What detection made of one frame: its faces, the plate's colourspace, warnings, or why it was unusable."""

    frame: int
    faces: list[FoundFace] = field(default_factory=list)
    plate_colorspace: str = ""
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], faces: list[FoundFace]) -> FrameFaces:
        """The frame's record around its already parsed ``faces``."""
        error = data.get("error")
        return cls(int(data["frame"]), faces, str(data.get("plate_colorspace", "")),
                   [str(w) for w in data.get("warnings", [])], None if error is None else str(error))


@dataclass
class TrackedFace:
    """A face as written to the faceset: its name, the track it belongs to and its smoothed landmarks."""

    name: str
    face_index: int
    track_id: int
    rect: list[float]
    score: float
    landmarks: list[list[float]]  # smoothed over the track, absolute plate pixels
    raw_landmarks: list[list[float]]  # as detected

    def landmarks_array(self) -> np.ndarray:
        """The smoothed landmarks as a (68, 2) float64 array."""
        return np.asarray(self.landmarks, np.float64).reshape(68, 2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackedFace:
        return cls(str(data["name"]), int(data["face_index"]), int(data["track_id"]), _rect(data["rect"], "rect"),
                   float(data["score"]), _points(data["landmarks"], "landmarks"),
                   _points(data["raw_landmarks"], "raw_landmarks"))


@dataclass
class Alignments:
    """The whole file: the detection options it was made with, per-frame detections and per-frame tracked faces."""

    detection: dict[str, Any] = field(default_factory=dict)
    frames: dict[int, FrameFaces] = field(default_factory=dict)
    tracks: dict[int, list[TrackedFace]] = field(default_factory=dict)
    created_by: str = f"dfl_vfx {__version__}"

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT,
            "version": VERSION,
            "created_by": self.created_by,
            "detection": self.detection,
            "frames": {str(f): asdict(r) for f, r in sorted(self.frames.items())},
            "tracks": {str(f): [asdict(face) for face in faces] for f, faces in sorted(self.tracks.items())},
        })

    @classmethod
    def from_json(cls, text: str, path: Path) -> Alignments:
        """Parse the file's text; a malformed one raises a one-line `DflError` naming ``path``."""
        redo = "run `dfl-vfx extract` for this plate again (with --overwrite)"
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DflError(f"{path}: not alignments JSON ({_first_line(exc)}); {redo}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DflError(f"{path}: not a dfl_vfx alignments file (format {FORMAT!r} expected); {redo}")
        version = data.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise DflError(f"{path}: alignments version {version!r}, this dfl_vfx {__version__} reads up to "
                           f"{VERSION}; update dfl_vfx or {redo}")
        where = "frames"
        try:
            frames = {}
            for key, value in dict(data.get("frames", {})).items():
                where = f"frame {key}"
                found = []
                for i, face in enumerate(value.get("faces", [])):
                    where = f"frame {key}, face {i}"
                    found.append(FoundFace.from_dict(face))
                where = f"frame {key}"
                frames[int(key)] = FrameFaces.from_dict(value, found)
            where = "tracks"
            tracks = {}
            for key, faces in dict(data.get("tracks", {})).items():
                where = f"tracks of frame {key}"
                tracked = []
                for i, face in enumerate(faces):
                    where = f"tracks of frame {key}, face {i}"
                    tracked.append(TrackedFace.from_dict(face))
                where = f"tracks of frame {key}"
                tracks[int(key)] = tracked
            detection = dict(data.get("detection") or {})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            reason = f"no {exc}" if isinstance(exc, KeyError) else _first_line(exc)
            raise DflError(f"{path}: malformed alignments at {where} ({reason}); {redo}") from None
        return cls(detection, frames, tracks, str(data.get("created_by", "")))


def alignments_path(faceset_dir: str | os.PathLike[str]) -> Path:
    """Where a faceset keeps its alignments."""
    return Path(faceset_dir) / ALIGNMENTS_FILE


def read_alignments(path: str | os.PathLike[str]) -> Alignments:
    """The alignments in ``path`` (a file, or a faceset folder); a missing or malformed file is a one-line error."""
    path = Path(path)
    if path.is_dir():
        path = alignments_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DflError(f"{path}: no such file; run `dfl-vfx extract PLATE --out {path.parent}` first") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise DflError(f"{path}: cannot read the alignments ({reason})") from None
    return Alignments.from_json(text, path)


def write_alignments(path: str | os.PathLike[str], alignments: Alignments) -> None:
    """Write ``alignments`` to ``path`` (a file, or a faceset folder) atomically."""
    path = Path(path)
    if path.is_dir():
        path = alignments_path(path)
    write_text_atomic(path, alignments.to_json())
