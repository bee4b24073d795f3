"""Read DeepFaceLab aligned JPEGs (metadata pickled in an APP15 segment) and import them into a faceset.

The pickle is untrusted input: :class:`SafeUnpickler` resolves only the numpy names that plain arrays and
scalars need plus a few builtin containers, and refuses every other global and any persistent id, so a
crafted file is reported, never executed.

Aligned pixel coordinates follow OpenCV (integer values at pixel centres); a resize by ``s`` maps
``x -> s * (x + 0.5) - 0.5``, the same sampling as ``cv2.resize``.
"""

from __future__ import annotations

import io
import logging
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfl_vfx.color.ocio import SRGB_SPACE, WORKING_SPACE, WorkingSpace
from dfl_vfx.errors import DflError
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.pose import estimate_pitch_yaw_roll
from dfl_vfx.faceset.faceset import Faceset
from dfl_vfx.faceset.metadata import FaceMetadata

log = logging.getLogger(__name__)

SOI, SOS, EOI, APP15 = 0xD8, 0xDA, 0xD9, 0xEF
# Markers that stand alone (no length field): TEM, RST0..RST7, SOI.
_STANDALONE_MARKERS = {0x01, *range(0xD0, 0xD8), SOI}
DFL_DETECTOR = "deepfacelab"
JPEG_SUFFIXES = (".jpg", ".jpeg")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The globals plain arrays and scalars pickle to, under numpy 1 (DFL) and numpy 2 module names."""
    from numpy._core import multiarray, numeric

    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer  # pickle protocol 5 arrays
    for name, builtin in (("set", set), ("frozenset", frozenset), ("bytearray", bytearray)):
        allowed[("builtins", name)] = builtin
        allowed[("__builtin__", name)] = builtin
    return allowed


class SafeUnpickler(pickle.Unpickler):
    """Unpickles plain data only: containers, numbers, strings, bytes, numpy arrays and scalars."""

    ALLOWED = _numpy_globals()

    def __init__(self, data: bytes, source: str) -> None:
        super().__init__(io.BytesIO(data))
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        allowed = self.ALLOWED.get((module, name))
        if allowed is None:
            raise DflError(
                f"{self.source}: refused to load DeepFaceLab metadata: it references {module}.{name}, "
                "which is not plain data"
            )
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise DflError(
            f"{self.source}: refused to load DeepFaceLab metadata: it uses a persistent id, which is not plain data"
        )


def jpeg_segments(data: bytes, source: str) -> list[tuple[int, bytes]]:
    """(marker, payload) of every segment before the image data (stops at SOS or EOI)."""
    if data[:2] != b"\xff\xd8":
        raise DflError(f"{source}: not a JPEG file (no SOI marker)")
    segments: list[tuple[int, bytes]] = []
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise DflError(f"{source}: corrupt JPEG (expected a marker at byte {pos})")
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= len(data):
            break
        marker = data[pos]
        pos += 1
        if marker in (SOS, EOI):
            break
        if marker in _STANDALONE_MARKERS:
            continue
        if pos + 2 > len(data):
            raise DflError(f"{source}: corrupt JPEG (truncated segment 0xFF{marker:02X})")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > len(data):
            raise DflError(f"{source}: corrupt JPEG (segment 0xFF{marker:02X} overruns the file)")
        segments.append((marker, data[pos + 2 : pos + length]))
        pos += length
    return segments


def _read_metadata_bytes(data: bytes, source: str) -> dict | None:
    payloads = [payload for marker, payload in jpeg_segments(data, source) if marker == APP15]
    if not payloads:
        return None
    try:
        meta = SafeUnpickler(b"".join(payloads), source).load()
    except DflError:
        raise
    except Exception as exc:  # any malformed pickle: report it, never trust it
        raise DflError(f"{source}: DeepFaceLab metadata is corrupt ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict):
        raise DflError(f"{source}: DeepFaceLab metadata is a {type(meta).__name__}, expected a dict")
    return meta


def read_dfl_metadata(path: str | Path) -> dict | None:
    """The metadata dict of a DeepFaceLab aligned JPEG, or None when it has no APP15 segment."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DflError(f"{path}: cannot read ({exc.strerror})") from None
    return _read_metadata_bytes(data, str(path))


@dataclass
class ImportReport:
    """What :func:`import_dfl_faceset` did: faces written, and files skipped with the reason."""

    faceset: Path
    imported: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _points(meta: dict, key: str, shape: tuple[int, ...], source: str) -> np.ndarray:
    if key not in meta:
        raise DflError(f"{source}: DeepFaceLab metadata lacks {key}")
    try:
        array = np.asarray(meta[key], dtype=np.float64).reshape(shape)
    except (TypeError, ValueError):
        raise DflError(f"{source}: DeepFaceLab {key} is not {shape} numbers") from None
    if not np.isfinite(array).all():
        raise DflError(f"{source}: DeepFaceLab {key} has non-finite values")
    return array


def _resized_points(points: np.ndarray, scale: float) -> np.ndarray:
    return points * scale + (scale - 1.0) / 2.0


def _resized_matrix(matrix: np.ndarray, scale: float) -> np.ndarray:
    resized = matrix * scale
    resized[:, 2] += (scale - 1.0) / 2.0
    return resized


def _ie_polys(value: Any, scale: float) -> list[dict[str, Any]] | None:
    """DFL XSeg label polygons as JSON ({type: 1 include / 0 exclude, pts: [[x, y], ...]}), resized."""
    if not isinstance(value, list | tuple):
        return None
    polys = []
    for poly in value:
        if not isinstance(poly, dict) or "pts" not in poly or "type" not in poly:
            return None
        pts = np.asarray(poly["pts"], dtype=np.float64).reshape(-1, 2)
        polys.append({"type": int(poly["type"]), "pts": _resized_points(pts, scale).tolist()})
    return polys


def _frame_number(source_filename: str) -> int | None:
    match = re.search(r"(\d+)$", Path(source_filename).stem)
    return int(match.group(1)) if match else None


def _face_index(jpeg: Path, source_filename: str) -> int | None:
    """Face index from a DFL aligned name ``{frame_stem}_{index}.jpg``; None if the file was renamed."""
    match = re.fullmatch(re.escape(Path(source_filename).stem) + r"_(\d+)", jpeg.stem)
    return int(match.group(1)) if match else None


def _decode_rgb(data: bytes, source: str) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DflError(f"{source}: JPEG pixels cannot be decoded (truncated file?)")
    if bgr.shape[0] != bgr.shape[1]:
        raise DflError(f"{source}: aligned face is {bgr.shape[1]}x{bgr.shape[0]}, expected a square")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def _resize(rgb: np.ndarray, size: int) -> np.ndarray:
    interpolation = cv2.INTER_AREA if size < rgb.shape[0] else cv2.INTER_LANCZOS4
    return cv2.resize(rgb, (size, size), interpolation=interpolation)


@dataclass
class _DflFace:
    face_type: str
    rgb: np.ndarray  # sRGB-encoded float [0, 1], at the file's size
    meta: dict


def _load_dfl_face(path: Path) -> _DflFace:
    data = path.read_bytes()
    meta = _read_metadata_bytes(data, str(path))
    if meta is None:
        raise DflError(f"{path}: no DeepFaceLab metadata (APP15 segment); not a DFL aligned face")
    face_type = meta.get("face_type")
    if not isinstance(face_type, str):
        raise DflError(f"{path}: DeepFaceLab metadata lacks a face_type name")
    try:
        face_type = FaceType.parse(face_type)
    except DflError as exc:
        raise DflError(f"{path}: {exc}") from None
    if not face_type.has_crop:
        raise DflError(f"{path}: face type {face_type.cli_name} has no aligned image")
    return _DflFace(face_type.cli_name, _decode_rgb(data, str(path)), meta)


def _face_metadata(path: Path, face: _DflFace, size: int, colorspace: str, face_index: int) -> FaceMetadata:
    source = str(path)
    scale = size / face.rgb.shape[0]
    landmarks = _resized_points(_points(face.meta, "landmarks", (68, 2), source), scale)
    source_filename = str(face.meta.get("source_filename") or path.name)
    extra: dict[str, Any] = {"dfl_aligned_file": path.name}
    polys = _ie_polys(face.meta.get("seg_ie_polys"), scale)
    if polys:
        extra["seg_ie_polys"] = polys
    if face.meta.get("xseg_mask") is not None:
        extra["dfl_xseg_mask_dropped"] = True  # a network output; re-apply XSeg to regenerate it
    pitch, yaw, roll = estimate_pitch_yaw_roll(landmarks, size)
    expand = face.meta.get("eyebrows_expand_mod")
    return FaceMetadata(
        face_type=face.face_type,
        size=size,
        source_filename=source_filename,
        source_frame=_frame_number(source_filename),
        face_index=face_index,
        source_rect=_points(face.meta, "source_rect", (4,), source),
        source_landmarks=_points(face.meta, "source_landmarks", (68, 2), source),
        landmarks=landmarks,
        image_to_face_mat=_resized_matrix(_points(face.meta, "image_to_face_mat", (2, 3), source), scale),
        pose={"pitch": pitch, "yaw": yaw, "roll": roll},
        detector=DFL_DETECTOR,
        score=1.0,  # DFL keeps no detector score; every face it saved passed its threshold
        colorspace=colorspace,
        plate_colorspace=SRGB_SPACE,
        eyebrows_expand_mod=1.0 if expand is None else float(expand),
        extra=extra,
    )


def import_dfl_faceset(
    src_dir: str | Path, dest_root: str | Path, *, size: int | None = None, colorspace: str = WORKING_SPACE
) -> ImportReport:
    """Convert a DeepFaceLab aligned folder into a faceset (16-bit PNG in the working space).

    The first importable face sets the faceset's face type and size (``size`` overrides the size; faces are
    resized and their landmarks and matrix scaled). Faces of another type, files without metadata and files
    whose metadata is refused or corrupt are skipped with a reason.
    """
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise DflError(f"{src_dir}: not a directory of DeepFaceLab aligned faces")
    report = ImportReport(faceset=Path(dest_root))
    faceset: Faceset | None = None
    srgb_to_working = None
    jpegs = sorted(p for p in src_dir.iterdir() if p.suffix.lower() in JPEG_SUFFIXES and p.is_file())
    for path in jpegs:
        try:
            face = _load_dfl_face(path)
        except (DflError, OSError) as exc:
            report.skipped.append((path.name, str(exc)))
            continue
        if faceset is None:
            faceset = Faceset.create(
                dest_root, face_type=face.face_type, size=size or face.rgb.shape[0], colorspace=colorspace
            )
            srgb_to_working = WorkingSpace(plate_space=SRGB_SPACE, working_space=faceset.info.colorspace).to_working
        if face.face_type != faceset.info.face_type:
            reason = f"face type {face.face_type}, the faceset is {faceset.info.face_type}"
            report.skipped.append((path.name, reason))
            continue
        target = faceset.info.size
        source_filename = str(face.meta.get("source_filename") or path.name)
        face_index = _face_index(path, source_filename)
        if face_index is None:  # renamed by hand or by DFL's sort: take the next free index of its frame
            face_index = 0
            while faceset.has(faceset.name_for(source_filename, face_index)):
                face_index += 1
        try:
            meta = _face_metadata(path, face, target, faceset.info.colorspace, face_index)
        except DflError as exc:
            report.skipped.append((path.name, str(exc)))
            continue
        except (TypeError, ValueError) as exc:  # a value of the wrong type in the untrusted metadata
            report.skipped.append((path.name, f"{path}: malformed DeepFaceLab metadata ({exc})"))
            continue
        rgb = face.rgb if face.rgb.shape[0] == target else _resize(face.rgb, target)
        working = srgb_to_working(np.clip(rgb, 0.0, 1.0))
        report.imported.append(faceset.add(faceset.name_for(source_filename, face_index), working, meta))
    for name, reason in report.skipped:
        log.warning("skipped %s: %s", name, reason)
    return report
