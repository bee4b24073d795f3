"""Evaluate a finished swap: read `dfl-vfx swap` output frames and their ``dfl_vfx:faces`` headers, find each
swapped face again, and measure identity, landmarks and pose against the dst faces and the src faceset, plus the
model's reconstruction SSIM (see ``dfl_vfx.eval.metrics`` and docs/dev/swap-output.md).

Faces are found again on the swapped frame (and, for the baseline, on the original plate) with the dlib backend in
a region around the header's landmarks, because a good swap moves the face's features; identity is embedded with
those landmarks (the header's when none is found, and the frame then counts as missed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from dfl_vfx.color.ocio import WORKING_SPACE, WorkingSpace, plate_colorspace, unpremultiply
from dfl_vfx.errors import DflError
from dfl_vfx.eval.metrics import EvalReport, identity_distance, landmark_distance, pose_distance, ssim
from dfl_vfx.face.align import transform_points
from dfl_vfx.face.crop import crop_face_at
from dfl_vfx.face.detect import create_backend
from dfl_vfx.face.detect.base import FaceBackend
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.finder import find_plate_faces
from dfl_vfx.face.identity import FaceEmbedder
from dfl_vfx.face.masks import hull_mask
from dfl_vfx.faceset import FaceRecord, Faceset
from dfl_vfx.io.image import read_header, read_image, rgba_channels
from dfl_vfx.io.sequence import FrameSequence, open_sequence
from dfl_vfx.io.shot_runner import run_frames
from dfl_vfx.models.checkpoint import load_model
from dfl_vfx.models.saehd import SAEHD
from dfl_vfx.progress import progress_bar
from dfl_vfx.swap.header import FACES_ATTRIBUTE, read_face_records

SEARCH_MARGIN = 1.0  # region searched around a header face, in face sizes on every side
MATCH_DISTANCE = 0.5  # a found face matches when its landmark centre is this many face sizes away at most
BATCH = 16  # faces per model forward
_FRAME_TOKENS = ("#", "@", "%", "$F")  # a spec holding one of these is a pattern, not a path that must exist


@dataclass
class SwapFace:
    """One swapped face as the swap output header describes it (absolute plate pixels)."""

    frame: int
    path: Path
    landmarks: np.ndarray  # (68, 2) dst landmarks
    matrix: np.ndarray  # (2, 3) plate -> aligned at ``resolution``
    resolution: int
    face_type: FaceType


@dataclass
class _Frame:
    rgb: np.ndarray  # unpremultiplied, finite, plate colours
    origin: np.ndarray  # data-window origin (x, y)
    space: WorkingSpace


@dataclass
class _Found:
    landmarks: np.ndarray | None  # re-detected (absolute pixels), None when no face was found
    embedding: np.ndarray


def swap_faces(sequence: FrameSequence) -> list[SwapFace]:
    """Every face listed in the headers of the sequence's existing frames, in frame order."""
    faces: list[SwapFace] = []
    tagged = 0
    for frame in sequence.frames:
        path = sequence.path(frame)
        if not path.is_file():
            continue
        records = read_face_records(read_header(path).metadata, path)
        if records is None:
            continue
        tagged += 1
        faces.extend(SwapFace(frame, path, r.landmarks, r.matrix, r.resolution, FaceType.parse(r.face_type))
                     for r in records)
    if not tagged:
        raise DflError(f"{sequence.pattern}: no frame carries a {FACES_ATTRIBUTE} header; give the output of "
                       "`dfl-vfx swap`")
    if not faces:
        raise DflError(f"{sequence.pattern}: the swap headers list no faces in frames "
                       f"{sequence.first}-{sequence.last}; nothing to evaluate")
    return faces


def _open_sequence(spec: str, frames: str | None, what: str) -> FrameSequence:
    if not Path(spec).exists() and not any(token in Path(spec).name for token in _FRAME_TOKENS):
        raise DflError(f"{what} {spec}: no such folder or file")
    return open_sequence(spec, frames)


def _evenly(items: list, limit: int) -> list:
    """At most ``limit`` items spread evenly over the list (all of them when it is short enough)."""
    if limit <= 0 or len(items) <= limit:
        return list(items)
    return [items[i] for i in np.unique(np.linspace(0, len(items) - 1, limit).round().astype(int))]


class _Spaces:
    """WorkingSpace objects by (plate space, working space), built once each."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], WorkingSpace] = {}

    def get(self, plate_space: str, working_space: str = WORKING_SPACE) -> WorkingSpace:
        key = (plate_space, working_space)
        if key not in self._cache:
            self._cache[key] = WorkingSpace(plate_space, working_space)
        return self._cache[key]


def _read_frame(path: Path, colorspace: str | None, spaces: _Spaces) -> _Frame:
    image = read_image(path, channels=rgba_channels(path))
    rgb = np.nan_to_num(image.rgb(), nan=0.0, posinf=0.0, neginf=0.0)
    alpha = image.alpha()
    if alpha is not None and alpha.min() < 1.0:
        rgb = unpremultiply(rgb, alpha)
    space = spaces.get(plate_colorspace(colorspace, image.metadata))
    return _Frame(rgb, np.array([image.data_window.x, image.data_window.y], np.float64), space)


def _find_face(frame: _Frame, near: np.ndarray, backend: FaceBackend, embedder: FaceEmbedder) -> _Found:
    """The face nearest to the ``near`` landmarks in a region around them, and its identity descriptor."""
    lo, hi = near.min(axis=0) - frame.origin, near.max(axis=0) - frame.origin
    size = float((hi - lo).max())
    height, width = frame.rgb.shape[:2]
    x0, y0 = np.maximum(np.floor(lo - SEARCH_MARGIN * size), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(hi + SEARCH_MARGIN * size) + 1, (width, height)).astype(int)
    offset = frame.origin + (x0, y0)
    crop = frame.rgb[y0:y1, x0:x1]
    centre = near.mean(axis=0) - offset
    found = None
    if crop.size:
        candidates = find_plate_faces(crop, frame.space.display_uint8, backend, min_face=max(1, int(size / 2)))
        gaps = [float(np.linalg.norm(f.landmarks.mean(axis=0) - centre)) for f in candidates]
        if gaps and min(gaps) <= MATCH_DISTANCE * size:
            found = candidates[int(np.argmin(gaps))].landmarks + offset
    used = near if found is None else found
    embedding = embedder.embed(frame.space.display_uint8(crop), used - offset)
    return _Found(found, embedding)


def _model_face(rgb: np.ndarray, landmarks: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """A face resized to the model's resolution as training loads it (INTER_AREA), and its hull mask."""
    scale = resolution / rgb.shape[0]
    if scale != 1.0:
        rgb = cv2.resize(rgb, (resolution, resolution), interpolation=cv2.INTER_AREA)
    return rgb, hull_mask((resolution, resolution), (landmarks + 0.5) * scale - 0.5)


def _reconstruction_ssim(model: SAEHD, faces: list[tuple[np.ndarray, np.ndarray]], key: str) -> float:
    """Mean masked SSIM between the faces and the model's ``key`` reconstruction (src_rgb or dst_rgb)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device)
    scores = []
    with torch.no_grad():
        for start in range(0, len(faces), BATCH):
            chunk = faces[start : start + BATCH]
            batch = torch.from_numpy(np.stack([f.transpose(2, 0, 1) for f, _ in chunk])).to(device, torch.float32)
            out = model(batch, batch)[key].float().cpu().numpy().transpose(0, 2, 3, 1)
            for (face, mask), recon in zip(chunk, out, strict=True):
                scores.append(ssim(np.clip(face, 0.0, 1.0), recon, mask))
    return float(np.mean(scores))


def _check_face_type(have: FaceType, model_face_type: str, what: str) -> None:
    wanted = FaceType.parse(model_face_type)
    if have is not wanted:
        raise DflError(f"{what} holds {have.cli_name} faces but the model is {wanted.cli_name}; give the model "
                       "the swap used")


def _src_reference(faceset: Faceset, records: list[FaceRecord], embedder: FaceEmbedder, spaces: _Spaces,
                   model_resolution: int | None, progress: bool | None) -> tuple[np.ndarray, list]:
    """Mean identity descriptor of the src faces, and (face, hull mask) pairs at the model's resolution."""
    embeddings, model_faces = [], []
    for record in progress_bar(records, desc="src faces", unit="face", enabled=progress):
        rgb = faceset.read(record)
        landmarks = record.meta.landmarks_array()
        space = spaces.get(record.meta.plate_colorspace, faceset.info.colorspace)
        embeddings.append(embedder.embed(space.display_uint8(space.from_working(rgb)), landmarks))
        if model_resolution is not None:
            model_faces.append(_model_face(rgb, landmarks, model_resolution))
    return np.mean(embeddings, axis=0), model_faces


def _group_by_frame(faces: Iterable[SwapFace]) -> dict[int, list[SwapFace]]:
    grouped: dict[int, list[SwapFace]] = {}
    for face in faces:
        grouped.setdefault(face.frame, []).append(face)
    return grouped


def _dst_model_face(frame: _Frame, face: SwapFace, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The plate's face cut with the header's matrix, in the working space at the model's resolution."""
    origin = (int(frame.origin[0]), int(frame.origin[1]))
    crop = crop_face_at(frame.rgb, None, origin, face.matrix, face.resolution)  # the crop extract and swap make
    landmarks = transform_points(face.landmarks, face.matrix)
    return _model_face(frame.space.to_working(crop), landmarks, resolution)


@dataclass
class _Measurements:
    """Per-face numbers collected over the frames."""

    swap_embeddings: list[np.ndarray] = field(default_factory=list)
    dst_embeddings: list[np.ndarray] = field(default_factory=list)
    landmark_errors: list[float] = field(default_factory=list)
    pose_errors: list[float] = field(default_factory=list)
    dst_model_faces: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    missed: set[int] = field(default_factory=set)


@dataclass
class _Tools:
    backend: FaceBackend
    embedder: FaceEmbedder
    spaces: _Spaces
    colorspace: str | None
    model_resolution: int | None


def _measure_frame(frame: int, faces: list[SwapFace], plate_path: Path | None, tools: _Tools,
                   out: _Measurements) -> None:
    """Find one frame's swapped faces again and add their numbers (and the plate's, when given) to ``out``."""
    swap_frame = _read_frame(faces[0].path, tools.colorspace, tools.spaces)
    plate_frame = None if plate_path is None else _read_frame(plate_path, tools.colorspace, tools.spaces)
    for face in faces:
        found = _find_face(swap_frame, face.landmarks, tools.backend, tools.embedder)
        out.swap_embeddings.append(found.embedding)
        if found.landmarks is None:
            out.missed.add(frame)
        else:
            out.landmark_errors.append(landmark_distance(found.landmarks, face.landmarks, face.matrix,
                                                         face.resolution))
            out.pose_errors.append(pose_distance(found.landmarks, face.landmarks, face.matrix, face.resolution))
        if plate_frame is not None:
            out.dst_embeddings.append(_find_face(plate_frame, face.landmarks, tools.backend, tools.embedder).embedding)
            if tools.model_resolution is not None:
                out.dst_model_faces.append(_dst_model_face(plate_frame, face, tools.model_resolution))


def _plate_path(plate_sequence: FrameSequence | None, plate: str | None, frame: int) -> Path | None:
    if plate_sequence is None:
        return None
    path = plate_sequence.path(frame)
    if not path.is_file():
        raise DflError(f"--plate {plate}: frame {frame} is missing ({path}); give the plate the swap was rendered from")
    return path


def _load_model(model: str, faceset: Faceset) -> SAEHD:
    net, _ = load_model(model)
    _check_face_type(FaceType.parse(faceset.info.face_type), net.config.face_type, f"src faceset {faceset.root}")
    if faceset.info.size < net.config.resolution:
        raise DflError(f"src faceset {faceset.root} has {faceset.info.size} px faces, smaller than the model's "
                       f"{net.config.resolution} px; extract with --size {net.config.resolution} or more")
    return net


def evaluate_shot(
    swapped: str,
    src_faceset: str,
    model: str | None = None,
    plate: str | None = None,
    frames: str | None = None,
    max_faces: int = 200,
    colorspace: str | None = None,
    progress: bool | None = None,
) -> EvalReport:
    """Measure a swap output (folder or frame pattern) against the src faceset.

    ``model``: the model folder the swap used, for reconstruction SSIM (omitted without it). ``plate``: the
    original dst plate, for the identity baseline and dst reconstruction SSIM. ``max_faces``: at most this many
    swapped faces (spread over the shot) and src faces are measured. ``colorspace``: the plate colourspace when the
    files' ``oiio:ColorSpace`` tag is missing or wrong. ``progress``: None or True report progress (a bar on a
    terminal, log lines elsewhere), False nothing.
    """
    if max_faces < 1:
        raise DflError(f"--max-faces {max_faces} must be 1 or more")
    sequence = _open_sequence(swapped, frames, "swap output")
    faceset = Faceset.open(src_faceset)
    records = _evenly(faceset.records(), max_faces)
    if not records:
        raise DflError(f"{src_faceset}: the src faceset holds no faces; run `dfl-vfx extract` first")
    plate_sequence = _open_sequence(plate, None, "--plate") if plate else None
    net = _load_model(model, faceset) if model is not None else None
    selected = _evenly(swap_faces(sequence), max_faces)
    if net is not None and plate_sequence is not None:
        _check_face_type(selected[0].face_type, net.config.face_type, f"swap output {sequence.pattern}")

    resolution = None if net is None else net.config.resolution
    tools = _Tools(create_backend("dlib"), FaceEmbedder(), _Spaces(), colorspace, resolution)
    reference, src_model_faces = _src_reference(faceset, records, tools.embedder, tools.spaces, resolution, progress)
    found = _Measurements()
    by_frame = _group_by_frame(selected)

    def measure(frame: int) -> None:
        _measure_frame(frame, by_frame[frame], _plate_path(plate_sequence, plate, frame), tools, found)

    # one frame at a time in this thread (the measurements accumulate); a frame that cannot be read stops the run
    run_frames(sorted(by_frame), measure, progress=progress, desc="frames", stop_on_failure=True)

    return EvalReport(
        ssim_src=_reconstruction_ssim(net, src_model_faces, "src_rgb") if net is not None else None,
        ssim_dst=_reconstruction_ssim(net, found.dst_model_faces, "dst_rgb") if found.dst_model_faces else None,
        identity_swap_to_src=identity_distance(np.stack(found.swap_embeddings), reference),
        identity_dst_to_src=identity_distance(np.stack(found.dst_embeddings), reference)
        if found.dst_embeddings else None,
        landmarks=float(np.mean(found.landmark_errors)) if found.landmark_errors else None,
        pose=float(np.mean(found.pose_errors)) if found.pose_errors else None,
        frames=len(by_frame),
        faces=len(selected),
        src_faces=len(records),
        missed=sorted(found.missed),
    )
