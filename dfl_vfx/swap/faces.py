"""Where the faces to swap come from: a destination faceset's smoothed tracks, or detection on the fly.

Detection on the fly runs in the frame threads of `dfl-vfx swap` and the connection threads of `dfl-vfx serve`.
dlib's detector keeps per-call scratch state inside the object, and the dlib backend holds one detector per
process, so two threads detecting at once got each other's faces (or crashed in native code). A
:class:`FaceFinder` therefore lets one thread at a time through detection and landmarking, process-wide, with
whatever backend it holds; reading, inference, merging and writing of other frames still overlap it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.face.detect import create_backend
from dfl_vfx.face.detect.base import AUTO
from dfl_vfx.face.finder import FaceSearch
from dfl_vfx.face.selection import FaceFilter
from dfl_vfx.faceset import Faceset
from dfl_vfx.faceset.alignments import ALIGNMENTS_FILE, alignments_path, read_alignments
from dfl_vfx.merge.merger import FacePlan

# One lock for every finder in the process: the dlib backend's native objects are process-wide singletons.
DETECTION_LOCK = threading.Lock()


def faceset_plans(faceset_dir: str | Path, frames: list[int]) -> dict[int, list[FacePlan]]:
    """Per frame, the faces an extraction found (temporally smoothed landmarks, track ids, motion)."""
    root = Path(faceset_dir)
    path = alignments_path(root)
    if not path.is_file():
        raise DflError(f"--faceset {root}: no {ALIGNMENTS_FILE}; run `dfl-vfx extract PLATE --out {root}` first "
                       "or leave --faceset out to detect faces while swapping")
    tracks = read_alignments(path).tracks
    by_track: dict[int, dict[int, np.ndarray]] = {}
    for f, faces in tracks.items():
        for face in faces:
            by_track.setdefault(face.track_id, {})[f] = face.landmarks_array().mean(axis=0)
    plans: dict[int, list[FacePlan]] = {}
    for f in frames:
        plans[f] = []
        for face in tracks.get(f, []):
            track = by_track[face.track_id]
            before, after = track.get(f - 1), track.get(f + 1)
            motion = None
            if before is not None and after is not None:
                motion = (after - before) / 2.0
            elif before is not None or after is not None:
                motion = (after - track[f]) if after is not None else (track[f] - before)
            plans[f].append(FacePlan(face.landmarks_array(), face.face_index, face.track_id, motion))
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
