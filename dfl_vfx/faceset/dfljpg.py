"""Read DeepFaceLab aligned JPEGs (metadata pickled in an APP15 segment) and import them into a faceset.

The pickle is untrusted input: a payload over :data:`MAX_METADATA_BYTES` is refused unread, and
:class:`SafeUnpickler` resolves only the numpy names that plain arrays and scalars need plus a few builtin
containers, refuses every other global, any persistent id and any argument that would allocate by a size (an
array shape, ``bytearray(n)``) instead of holding data, so a crafted file is reported, never executed, and never
takes more memory than a small multiple of its size.

Aligned pixel coordinates follow OpenCV (integer values at pixel centres); a resize by ``s`` maps
``x -> s * (x + 0.5) - 0.5``, the same sampling as ``cv2.resize``.
"""

from __future__ import annotations

import io
import logging
import math
import pickle
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy._core import multiarray, numeric

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

MAX_METADATA_BYTES = 1 << 20
"""Largest APP15 payload read. DeepFaceLab writes its metadata as one APP15 segment, whose 16-bit length holds at
most 65,533 bytes (landmarks, matrices and an XSeg mask of at most 8 KB take a few KB); the cap is 16 times that.
It also bounds what a crafted pickle can build, as a byte of pickle makes at most one object: the worst case, a
MiB of empty-set opcodes, takes about 240 MB and 1 s to load."""

MAX_TUPLE_NESTING = 64
"""Deepest tuple-in-tuple nesting accepted; hashing a tuple recurses through its items without a depth check, so a
deeper one (a set member or dict key) would overflow the C stack. DeepFaceLab's metadata nests tuples 2 deep."""

_NUMPY_MODULES = ("numpy.core", "numpy._core")  # numpy 1 (DeepFaceLab) and numpy 2 module names
_ARRAY_STATE_VERSION = 1
_DTYPE_STATE_VERSION = 3
_BYTE_ORDERS = ("<", ">", "|", "=")


def _plain_dtype(value: Any) -> np.dtype | None:
    """``value`` as a dtype of plain numbers or bytes (no objects, fields or sub-arrays, itemsize within the cap)."""
    if not isinstance(value, np.dtype):
        return None
    if value.hasobject or value.fields is not None or value.subdtype is not None:
        return None
    return value if value.itemsize <= MAX_METADATA_BYTES else None


class SafeUnpickler(pickle._Unpickler):  # the pure-Python unpickler: every opcode below can be vetted
    """Unpickles plain data only: containers, numbers, strings, bytes, numpy arrays and scalars.

    Globals resolve only to the callables plain numpy arrays and scalars pickle to, plus set, frozenset and
    bytearray, each wrapped to refuse arguments that allocate by size (``bytearray(2**32)``, an array shape or
    dtype larger than :data:`MAX_METADATA_BYTES`) or build objects (numpy object dtypes). ``BUILD`` is allowed
    only on arrays and dtypes, with a state vetted first; ``NEWOBJ`` and persistent ids are refused. The
    pure-Python unpickler is used because the C one sizes its memo by the largest index a pickle names (9 bytes
    can make it allocate gigabytes) and allocates a ``BYTEARRAY8`` by its declared length before reading it.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, data: bytes, source: str) -> None:
        super().__init__(io.BytesIO(data))
        self.source = source
        self._allocated = 0  # bytes of arrays allocated from shapes (pickled arrays have shape (0,): none)
        self._tuple_depths: dict[int, tuple[tuple, int]] = {}  # id -> (the tuple, kept alive; its nesting)
        self._unbuilt_dtypes: dict[int, np.dtype] = {}  # dtypes made but neither given their state nor used yet
        self._ndarray_mark = self._ndarray  # what numpy.ndarray resolves to: only _reconstruct's first argument
        self._globals: dict[tuple[str, str], Any] = {("numpy", "ndarray"): self._ndarray_mark}
        self._globals[("numpy", "dtype")] = self._dtype
        for package in _NUMPY_MODULES:
            self._globals[(f"{package}.multiarray", "_reconstruct")] = self._reconstruct
            self._globals[(f"{package}.multiarray", "scalar")] = self._scalar
            self._globals[(f"{package}.numeric", "_frombuffer")] = self._frombuffer  # pickle protocol 5 arrays
        for builtins_module in ("builtins", "__builtin__"):
            self._globals[(builtins_module, "set")] = set
            self._globals[(builtins_module, "frozenset")] = frozenset
            self._globals[(builtins_module, "bytearray")] = self._bytearray

    def refuse(self, reason: str) -> DflError:
        return DflError(f"{self.source}: refused to load DeepFaceLab metadata: {reason}")

    def find_class(self, module: str, name: str) -> Any:
        allowed = self._globals.get((module, name))
        if allowed is None:
            raise self.refuse(f"it references {module}.{name}, which is not plain data")
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise self.refuse("it uses a persistent id, which is not plain data")

    # -- the allowed globals, each refusing what is not how plain data pickles --------------------------------

    def _ndarray(self, *args: Any) -> None:
        raise self.refuse("it calls numpy.ndarray, which allocates an array by its shape instead of holding data")

    def _checked_dtype(self, value: Any) -> np.dtype:
        """``value`` (a dtype, or a type code) as a plain dtype, now in use: BUILD may no longer change it."""
        if isinstance(value, np.dtype):
            self._unbuilt_dtypes.pop(id(value), None)
        if isinstance(value, bytes):  # _reconstruct's type code, b"b"
            value = value.decode("ascii", "replace")
        try:
            dtype = value if isinstance(value, np.dtype) else np.dtype(value) if isinstance(value, str) else None
        except (TypeError, ValueError):
            dtype = None
        plain = _plain_dtype(dtype)
        if plain is None:
            shown = value.str if isinstance(value, np.dtype) else repr(value)
            raise self.refuse(f"it uses the numpy dtype {shown}, which is not a dtype of plain numbers")
        return plain

    def _dtype(self, spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
        if not isinstance(spec, str):
            raise self.refuse(f"it builds a numpy dtype from a {type(spec).__name__}, which is not plain data")
        # copy=True always: BUILD then sets the state of this new dtype, never of numpy's shared float32 and kin.
        dtype = np.dtype(spec, align=bool(align), copy=True)
        if _plain_dtype(dtype) is None:
            self._checked_dtype(dtype)  # refuses it
        self._unbuilt_dtypes[id(dtype)] = dtype
        return dtype

    def _charge(self, shape: Any, dtype: np.dtype) -> tuple[int, ...]:
        """Count the bytes an array of ``shape`` takes against the cap; the shape as a tuple of ints."""
        if not isinstance(shape, tuple) or not all(type(dim) is int and dim >= 0 for dim in shape):
            raise self.refuse(f"an array shape {shape!r} is not a tuple of sizes")
        nbytes = math.prod(shape) * dtype.itemsize
        self._allocated += nbytes
        if self._allocated > MAX_METADATA_BYTES:
            raise self.refuse(
                f"it allocates arrays of {self._allocated} bytes by their shape, more than the "
                f"{MAX_METADATA_BYTES}-byte cap on metadata"
            )
        return shape

    def _reconstruct(self, subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
        if subtype is not self._ndarray_mark:
            raise self.refuse("it reconstructs an array of a type other than numpy.ndarray")
        dtype = self._checked_dtype(typecode)
        return multiarray._reconstruct(np.ndarray, self._charge(shape, dtype), dtype)

    def _scalar(self, dtype: Any, data: Any = None) -> np.generic:
        dtype = self._checked_dtype(dtype)
        if not isinstance(data, bytes) or len(data) != dtype.itemsize:  # without data numpy allocates itemsize
            raise self.refuse(f"a numpy {dtype} scalar is not {dtype.itemsize} bytes of data")
        return multiarray.scalar(dtype, data)

    def _frombuffer(self, buffer: Any, dtype: Any, shape: Any, order: Any, axis_order: Any = None) -> np.ndarray:
        dtype = self._checked_dtype(dtype)
        if not isinstance(buffer, bytes | bytearray | memoryview):
            raise self.refuse(f"an array's buffer is a {type(buffer).__name__}, not bytes")
        return numeric._frombuffer(buffer, dtype, shape, order, axis_order)

    def _bytearray(self, *args: Any) -> bytearray:
        if not args:
            return bytearray()
        if len(args) == 1 and isinstance(args[0], bytes | bytearray):
            return bytearray(args[0])
        if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin-1", "latin1"):  # pickle protocol 2
            return bytearray(args[0], "latin-1")
        shown = ", ".join(type(arg).__name__ if not isinstance(arg, int) else str(arg) for arg in args)
        raise self.refuse(f"it calls bytearray({shown}), which allocates by size instead of holding data")

    # -- opcodes that build or allocate, vetted before they run -------------------------------------------------

    def load_build(self) -> None:
        instance, state = self.stack[-2], self.stack[-1]
        if type(instance) is np.ndarray:
            self._check_array_state(state)
        elif isinstance(instance, np.dtype):
            if self._unbuilt_dtypes.pop(id(instance), None) is not instance:  # numpy would resize arrays using it
                raise self.refuse("it sets the state of a numpy dtype already in use, which is not plain data")
            self._check_dtype_state(state)
        else:
            raise self.refuse(f"it sets the state of a {type(instance).__name__}, which is not plain data")
        super().load_build()
        if isinstance(instance, np.dtype):
            self._checked_dtype(instance)

    dispatch[pickle.BUILD[0]] = load_build

    def _check_array_state(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 5 and state[0] == _ARRAY_STATE_VERSION:
            state = state[1:]
        if not isinstance(state, tuple) or len(state) != 4:
            raise self.refuse("an array's state is not (shape, dtype, fortran order, data)")
        shape, dtype, _, data = state
        dtype = self._checked_dtype(dtype)
        if not isinstance(shape, tuple) or not all(type(dim) is int and dim >= 0 for dim in shape):
            raise self.refuse(f"an array shape {shape!r} is not a tuple of sizes")
        if not isinstance(data, bytes) or len(data) != math.prod(shape) * dtype.itemsize:
            raise self.refuse(f"an array's data does not hold its shape {shape} of {dtype}")

    def _check_dtype_state(self, state: Any) -> None:
        """Only the state of a plain dtype: (3, byte order, None, None, None, itemsize, alignment, flags)."""
        plain = (
            isinstance(state, tuple)
            and len(state) == 8
            and state[0] == _DTYPE_STATE_VERSION
            and state[1] in _BYTE_ORDERS
            and state[2:5] == (None, None, None)
            and all(type(value) is int for value in state[5:])
            and state[5] <= MAX_METADATA_BYTES
        )
        if not plain:
            raise self.refuse("a numpy dtype's state is not that of plain numbers")

    def load_bytearray8(self) -> None:
        """Read the bytes first: pickle's own BYTEARRAY8 allocates the declared length before reading it."""
        (size,) = struct.unpack("<Q", self.read(8))
        if size > MAX_METADATA_BYTES:
            raise self.refuse(f"it declares a bytearray of {size} bytes, more than the whole metadata")
        data = self.read(size)
        if len(data) != size:
            raise pickle.UnpicklingError("BYTEARRAY8 runs past the end of the pickle")
        self.append(bytearray(data))

    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def load_newobj(self) -> None:
        raise self.refuse("it creates an object from its class (NEWOBJ), which is not plain data")

    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj

    def _tuple_made(self) -> None:
        """Record the nesting of the tuple just pushed; refuse one nested deeper than MAX_TUPLE_NESTING."""
        made = self.stack[-1]
        depth = 1
        for item in made:
            known = self._tuple_depths.get(id(item))
            if known is not None and known[0] is item:
                depth = max(depth, known[1] + 1)
        if depth > MAX_TUPLE_NESTING:
            raise self.refuse(f"its tuples nest more than {MAX_TUPLE_NESTING} deep, which is not plain data")
        if made:
            self._tuple_depths[id(made)] = (made, depth)

    def load_tuple(self) -> None:
        super().load_tuple()
        self._tuple_made()

    def load_tuple1(self) -> None:
        super().load_tuple1()
        self._tuple_made()

    def load_tuple2(self) -> None:
        super().load_tuple2()
        self._tuple_made()

    def load_tuple3(self) -> None:
        super().load_tuple3()
        self._tuple_made()

    dispatch[pickle.TUPLE[0]] = load_tuple
    dispatch[pickle.TUPLE1[0]] = load_tuple1
    dispatch[pickle.TUPLE2[0]] = load_tuple2
    dispatch[pickle.TUPLE3[0]] = load_tuple3


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
    size = sum(len(payload) for payload in payloads)
    if size > MAX_METADATA_BYTES:
        raise DflError(
            f"{source}: refused to load DeepFaceLab metadata: it is {size} bytes, more than the "
            f"{MAX_METADATA_BYTES}-byte cap (DeepFaceLab writes at most 65533); not a DeepFaceLab aligned face"
        )
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
