"""Where the faces to swap come from: a destination faceset's smoothed tracks, or detection on the fly.

Detection on the fly runs in the frame threads of `dfl-vfx swap` and the connection threads of `dfl-vfx serve`.
dlib's detector keeps per-call scratch state inside the object, and the dlib backend holds one detector per
process, so two threads detecting at once got each other's faces (or crashed in native code). A
:class:`FaceFinder` therefore lets one thread at a time through detection and landmarking, process-wide, with
whatever backend it holds; reading, inference, merging and writing of other frames still overlap it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.extract.pipeline import ALIGNMENTS_FILE
from dfl_vfx.face.detect import create_backend
from dfl_vfx.face.detect.base import AUTO
from dfl_vfx.face.finder import FaceSearch
from dfl_vfx.face.selection import FaceFilter
from dfl_vfx.faceset import Faceset
from dfl_vfx.merge.merger import FacePlan

# One lock for every finder in the process: the dlib backend's native objects are process-wide singletons.
DETECTION_LOCK = threading.Lock()


def _centroid(landmarks: object) -> np.ndarray:
    return np.asarray(landmarks, np.float64).reshape(68, 2).mean(axis=0)


def faceset_plans(faceset_dir: str | Path, frames: list[int]) -> dict[int, list[FacePlan]]:
    """Per frame, the faces an extraction found (temporally smoothed landmarks, track ids, motion)."""
    root = Path(faceset_dir)
    path = root / ALIGNMENTS_FILE
    if not path.is_file():
        raise DflError(f"--faceset {root}: no {ALIGNMENTS_FILE}; run `dfl-vfx extract PLATE --out {root}` first "
                       "or leave --faceset out to detect faces while swapping")
    try:
        data = json.loads(path.read_text())
        tracks = {int(f): jobs for f, jobs in data["tracks"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DflError(f"{path}: unreadable alignments ({exc}); rerun `dfl-vfx extract` for this plate") from None
    by_track: dict[int, dict[int, np.ndarray]] = {}
    for f, jobs in tracks.items():
        for job in jobs:
            by_track.setdefault(int(job["track_id"]), {})[f] = _centroid(job["landmarks"])
    plans: dict[int, list[FacePlan]] = {}
    for f in frames:
        plans[f] = []
        for job in tracks.get(f, []):
            track = by_track[int(job["track_id"])]
            before, after = track.get(f - 1), track.get(f + 1)
            motion = None
            if before is not None and after is not None:
                motion = (after - before) / 2.0
            elif before is not None or after is not None:
                motion = (after - track[f]) if after is not None else (track[f] - before)
            plans[f].append(FacePlan(np.asarray(job["landmarks"], np.float64).reshape(68, 2),
                                     int(job["face_index"]), int(job["track_id"]), motion))
    return plans


def check_faceset_matches(faceset_dir: str | Path, resolution: int, face_type: str) -> None:
    """A model and a faceset must agree on the face type, and the faceset must not be smaller than the model."""
    info = Faceset.open(faceset_dir).info
    if info.face_type != face_type:
        raise DflError(f"--faceset {faceset_dir} holds {info.face_type} faces but the model was trained on "
                       f"{face_type}; extract the plate again with --face-type {face_type}")
    if info.size < resolution:
        raise DflError(f"--faceset {faceset_dir} faces are {info.size} px but the model works at {resolution} px; "
                       f"extract again with --size {resolution} or larger")


class FaceFinder:
    """Detection while swapping (no temporal smoothing: extract a faceset with --smooth for that); thread-safe.

    ``detect_size`` and ``min_face`` default to `dfl-vfx extract`'s, so swap finds the faces extract would.
    """

    def __init__(self, detector: str = "dlib", detect_size: int = AUTO, min_face: int = AUTO) -> None:
        self.search = FaceSearch(create_backend(detector), FaceFilter("all"), detect_size, min_face)

    def plans(self, rgb: np.ndarray, origin: tuple[int, int],
              to_display: Callable[[np.ndarray], np.ndarray]) -> list[FacePlan]:
        """Faces of a frame's RGB (any float dtype, NaN allowed) as plans in absolute plate pixels."""
        finite = np.nan_to_num(np.asarray(rgb[..., :3], np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        with DETECTION_LOCK:
            faces = self.search.find(finite, to_display)
        faces.sort(key=lambda face: face.rect[0])
        return [FacePlan(face.landmarks + np.array(origin, np.float64), i, i) for i, face in enumerate(faces)]
