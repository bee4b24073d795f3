"""Finding the faces of a scene-linear plate: detection on small display copies, 68 landmarks fitted on
full-resolution crops around each face, and the choice of which faces to keep (all, largest, nearest to a point,
or a reference person).

`dfl-vfx extract` (both its workers and its ``--reference`` photos), the swap's on-the-fly `FaceFinder` and
`dfl-vfx eval` all find faces here, so they find the same faces in the same frame. Coordinates are array pixels of
the RGB given; callers add the data window's origin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from dfl_vfx.color.ocio import WORKING_SPACE, WorkingSpace, plate_colorspace
from dfl_vfx.errors import DflError
from dfl_vfx.face.detect import DetectedFace
from dfl_vfx.face.detect.base import AUTO, FaceBackend, detection_plan, plan_candidates, resolve_min_face
from dfl_vfx.face.identity import FaceEmbedder
from dfl_vfx.face.selection import FaceFilter
from dfl_vfx.io.image import read_image

LANDMARK_MARGIN = 0.3  # crop around a detector rect for full-resolution landmarks, in rect sizes

ToDisplay = Callable[[np.ndarray], np.ndarray]  # scene-linear RGB -> the uint8 sRGB a detector sees


def landmark_crop_box(rect: tuple[float, float, float, float], shape: tuple[int, int],
                      margin: float = LANDMARK_MARGIN) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): ``rect`` grown by ``margin`` rect sizes on every side, clipped to a (height, width) frame."""
    left, top, right, bottom = rect
    pad = margin * max(right - left, bottom - top)
    height, width = shape
    x0, y0 = max(0, int(left - pad)), max(0, int(top - pad))
    x1, y1 = min(width, int(np.ceil(right + pad)) + 1), min(height, int(np.ceil(bottom + pad)) + 1)
    return x0, y0, x1, y1


def find_plate_faces(
    rgb: np.ndarray,
    to_display: ToDisplay,
    backend: FaceBackend,
    detect_size: int = AUTO,
    min_face: int = AUTO,
    enough: int = 0,
) -> list[DetectedFace]:
    """Faces of a scene-linear plate: detection on downscaled display copies, landmarks on full-res crops.

    ``detect_size`` and ``min_face`` of ``AUTO`` (0) are derived from the frame and the backend (see
    `dfl_vfx.face.detect.base.detection_plan`); ``enough`` > 0 says only that many of the largest faces are
    wanted, which lets a coarse copy answer for frames with big faces. Only the small copies and the crops
    around each face go through the display transform, never the whole frame. Coordinates are array pixels of
    ``rgb``.
    """
    height, width = rgb.shape[:2]
    faces = []
    for rect, score in plan_candidates(rgb, to_display, backend, detect_size, min_face, enough):
        x0, y0, x1, y1 = landmark_crop_box(rect, (height, width))
        crop = to_display(rgb[y0:y1, x0:x1])
        local = (rect[0] - x0, rect[1] - y0, rect[2] - x0, rect[3] - y0)
        points = np.asarray(backend.landmarks(crop, local), np.float64).reshape(68, 2) + (x0, y0)
        faces.append(DetectedFace(rect=rect, score=score, landmarks=points))
    return faces


def embed_face(embedder: FaceEmbedder, rgb: np.ndarray, to_display: ToDisplay, face: DetectedFace) -> np.ndarray:
    """The 128-d identity descriptor of ``face``, computed on the display crop its landmarks were fitted on."""
    x0, y0, x1, y1 = landmark_crop_box(face.rect, rgb.shape[:2])
    return embedder.embed(to_display(rgb[y0:y1, x0:x1]), face.landmarks - (x0, y0))


def faces_needed(select: str, max_faces: int) -> int:
    """How many faces a frame needs for a selection to be decided by the largest (0: every face counts)."""
    if select == "largest":
        return max_faces or 1
    if select == "all":
        return max_faces
    return 0


@dataclass
class FaceSearch:
    """Which faces of a frame to keep, and how to look for them: the backend, the detection sizes, the filter.

    ``reference`` holds the descriptors of the person to keep when the filter selects by identity; the
    ``embedder`` is then made on first use.
    """

    backend: FaceBackend
    face_filter: FaceFilter
    detect_size: int = AUTO
    min_face: int = AUTO
    reference: np.ndarray | None = None
    embedder: FaceEmbedder | None = None

    @property
    def enough(self) -> int:
        """Faces a frame needs before smaller ones cannot change the selection (0: every face counts)."""
        return faces_needed(self.face_filter.mode, self.face_filter.max_faces)

    def find(self, rgb: np.ndarray, to_display: ToDisplay) -> list[DetectedFace]:
        """The kept faces of a frame's finite scene-linear RGB, in the filter's order."""
        faces = find_plate_faces(rgb, to_display, self.backend, self.detect_size, self.min_face, self.enough)
        embeddings = None
        if self.face_filter.mode == "identity" and faces:
            if self.embedder is None:
                self.embedder = FaceEmbedder()
            embeddings = np.stack([embed_face(self.embedder, rgb, to_display, face) for face in faces])
        return self.face_filter.apply(faces, embeddings, self.reference)

    def describe(self, shape: tuple[int, int]) -> str:
        """Where faces of a (height, width) frame are looked for: the copies searched and the smallest face."""
        plan = detection_plan(shape, self.backend, self.detect_size, self.min_face, self.enough)
        sizes = [f"{max(1, round(shape[1] * f))}x{max(1, round(shape[0] * f))}" for f, _ in plan]
        where = f"a {sizes[-1]} copy"
        if len(sizes) > 1:
            where = f"a {sizes[0]} copy, then {where} when that holds under {self.enough} face(s)"
        settings = ", ".join(
            f"{name} {'auto' if value == AUTO else value}"
            for name, value in (("--min-face", self.min_face), ("--detect-size", self.detect_size))
        )
        smallest = resolve_min_face(self.min_face, shape)
        return f"faces from {smallest} px, searched on {where} of {shape[1]}x{shape[0]} ({settings})"


def reference_embeddings(paths: Iterable[str], backend: FaceBackend, colorspace: str | None = None,
                         ocio_config: str | None = None, detect_size: int = AUTO,
                         min_face: int = AUTO) -> np.ndarray | None:
    """128-d descriptors of the ``--reference`` photos (the largest face of each); None when there are none."""
    paths = list(paths)
    if not paths:
        return None
    embedder = FaceEmbedder()
    rows = []
    for path in paths:
        image = read_image(path)
        space = WorkingSpace(plate_colorspace(colorspace, image.metadata), WORKING_SPACE, ocio_config)
        rgb = np.nan_to_num(image.rgb())
        faces = find_plate_faces(rgb, space.display_uint8, backend, detect_size, min_face, 1)
        if not faces:
            raise DflError(f"--reference {path}: no face found; give a clear photo of the person to keep "
                           "(or a smaller --min-face)")
        rows.append(embed_face(embedder, rgb, space.display_uint8, faces[0]))
    return np.stack(rows)
