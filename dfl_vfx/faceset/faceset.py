"""A faceset on disk: a directory of aligned face images, each carrying its metadata, plus faceset.json.

Layout::

    FACESET/
      faceset.json        format, version, face type, size, colourspace, encoding (FacesetInfo)
      plate.1001_0.png    aligned face {source_stem}_{face_index}{ext}; FaceMetadata JSON in "dfl_vfx:face"

Pixels are RGB in the faceset's working colourspace. ``png16`` stores them as 16-bit PNG (values clamped to
[0, 1], quantised to 1/65535); ``exr`` as half-float EXR (full range). Nothing is pickled.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from dfl_vfx import __version__
from dfl_vfx.color.ocio import WORKING_SPACE, resolve_colorspace
from dfl_vfx.errors import DflError
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.faceset.metadata import FACE_ATTRIBUTE, FaceMetadata
from dfl_vfx.io.atomic import write_text_atomic
from dfl_vfx.io.image import Image, read_header, read_image, write_image

log = logging.getLogger(__name__)

FACESET_FORMAT = "dfl_vfx.faceset"
FACESET_VERSION = 1
INFO_FILE = "faceset.json"
ENCODINGS: dict[str, tuple[str, str]] = {"png16": (".png", "uint16"), "exr": (".exr", "half")}
# Files considered when listing faces: the faceset's own encodings and images artists may drop in by hand.
FACE_FILE_SUFFIXES = (".png", ".exr", ".jpg", ".jpeg", ".tif", ".tiff")
MIN_SIZE = 16


@dataclass
class FacesetInfo:
    """The contents of faceset.json."""

    face_type: str
    size: int
    colorspace: str = WORKING_SPACE
    encoding: str = "png16"
    created_by: str = f"dfl_vfx {__version__}"
    format: str = FACESET_FORMAT
    version: int = FACESET_VERSION

    @property
    def suffix(self) -> str:
        """File extension of the faces, with the dot."""
        return ENCODINGS[self.encoding][0]

    def to_json(self) -> str:
        keys = ("format", "version", "face_type", "size", "colorspace", "encoding", "created_by")
        data = asdict(self)
        return json.dumps({key: data[key] for key in keys}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> FacesetInfo:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DflError(f"{source}: not valid JSON ({exc}); restore it or extract into a new directory") from None
        if not isinstance(data, dict) or data.get("format") != FACESET_FORMAT:
            raise DflError(f"{source}: not a dfl_vfx faceset description (format is not {FACESET_FORMAT!r})")
        if not isinstance(data.get("version"), int) or data["version"] > FACESET_VERSION:
            raise DflError(
                f"{source}: faceset version {data.get('version')!r} is not supported by dfl_vfx {__version__} "
                f"(reads version {FACESET_VERSION}); update dfl_vfx"
            )
        known = {f.name for f in fields(cls)}
        missing = [key for key in ("face_type", "size", "colorspace", "encoding") if key not in data]
        if missing:
            raise DflError(f"{source}: lacks {', '.join(missing)}; restore it or extract into a new directory")
        try:
            info = cls(**{key: value for key, value in data.items() if key in known})
        except TypeError as exc:
            raise DflError(f"{source}: invalid faceset description ({exc})") from None
        if info.encoding not in ENCODINGS or not isinstance(info.size, int):
            raise DflError(f"{source}: invalid encoding {info.encoding!r} or size {info.size!r}")
        return info


@dataclass
class FaceRecord:
    """One face file and the metadata read from its header."""

    path: Path
    meta: FaceMetadata

    @property
    def name(self) -> str:
        return self.path.name


def face_file_name(source_filename: str, face_index: int, suffix: str) -> str:
    """DeepFaceLab's naming rule: ``{source_stem}_{face_index}{ext}``, e.g. ``plate.1001_0.png``."""
    return f"{Path(source_filename).stem}_{face_index}{suffix}"


def _canonical_face_type(name: str) -> str:
    face_type = FaceType.parse(name)
    if not face_type.has_crop:
        raise DflError(f"face type {name!r} has no aligned image, so it cannot make a faceset")
    return face_type.cli_name


class Faceset:
    """Aligned faces in one directory; open with :meth:`open` or :meth:`create`."""

    def __init__(self, root: Path, info: FacesetInfo) -> None:
        self.root = Path(root)
        self.info = info

    @classmethod
    def create(
        cls,
        root: str | Path,
        *,
        face_type: str,
        size: int,
        colorspace: str = WORKING_SPACE,
        encoding: str = "png16",
        exist_ok: bool = True,
    ) -> Faceset:
        """Create a faceset (or reopen an existing one that has the same face type, size, colour and encoding)."""
        root = Path(root)
        if encoding not in ENCODINGS:
            raise DflError(f"faceset encoding {encoding!r} is unknown; use one of {', '.join(ENCODINGS)}")
        if not isinstance(size, int | np.integer) or size < MIN_SIZE:
            raise DflError(f"faceset size {size!r} is too small; use at least {MIN_SIZE} px (DeepFaceLab uses 512)")
        wanted = FacesetInfo(
            face_type=_canonical_face_type(face_type),
            size=int(size),
            colorspace=resolve_colorspace(colorspace),
            encoding=encoding,
        )
        info_path = root / INFO_FILE
        if info_path.exists():
            if not exist_ok:
                raise DflError(f"{root}: is already a faceset; use a new directory or allow reuse")
            existing = cls.open(root)
            for key in ("face_type", "size", "encoding", "colorspace"):
                have, want = getattr(existing.info, key), getattr(wanted, key)
                if have != want:
                    raise DflError(
                        f"{root}: existing faceset has {key} {have!r}, this run wants {want!r}; "
                        "use a new directory for a different faceset"
                    )
            return existing
        if root.exists() and not root.is_dir():
            raise DflError(f"{root}: exists and is not a directory; choose a directory for the faceset")
        root.mkdir(parents=True, exist_ok=True)
        write_text_atomic(info_path, wanted.to_json())
        return cls(root, wanted)

    @classmethod
    def open(cls, root: str | Path) -> Faceset:
        """Open an existing faceset; a missing or unreadable faceset.json is a DflError naming it."""
        info_path = Path(root) / INFO_FILE
        if not info_path.is_file():
            raise DflError(f"{info_path}: not found; {root} is not a dfl_vfx faceset (extract or import one first)")
        try:
            text = info_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DflError(f"{info_path}: cannot read ({exc}); check permissions") from None
        return cls(Path(root), FacesetInfo.from_json(text, str(info_path)))

    def face_path(self, name: str) -> Path:
        """Path of a face by file name (the faceset's extension is added when the name has none)."""
        if not name or Path(name).name != name or name in (".", ".."):
            raise DflError(f"face name {name!r} must be a plain file name inside the faceset {self.root}")
        if Path(name).suffix.lower() not in FACE_FILE_SUFFIXES:  # "plate.1001_0" has no image suffix yet
            name += self.info.suffix
        return self.root / name

    def name_for(self, source_filename: str, face_index: int) -> str:
        """File name of a new face by the naming rule, with this faceset's extension."""
        return face_file_name(source_filename, face_index, self.info.suffix)

    def add(self, name: str, image: np.ndarray, meta: FaceMetadata) -> Path:
        """Write a face (float32 (S, S, 3) RGB in the working space) with its metadata; returns its path."""
        path = self.face_path(name)
        size = self.info.size
        if path.suffix.lower() != self.info.suffix:
            raise DflError(f"{path.name}: this faceset stores {self.info.suffix} faces ({self.info.encoding})")
        image = np.asarray(image, dtype=np.float32)
        if image.shape != (size, size, 3):
            raise DflError(f"{path.name}: face image is {image.shape}, this faceset needs ({size}, {size}, 3)")
        if not np.isfinite(image).all():
            raise DflError(f"{path.name}: face image has NaN or infinite values; fix the source frame")
        for key, have, want in (
            ("face type", meta.face_type, self.info.face_type),
            ("size", meta.size, size),
            ("colourspace", meta.colorspace, self.info.colorspace),
        ):
            if have != want:
                raise DflError(f"{path.name}: metadata {key} {have!r} does not match the faceset's {want!r}")
        channel_format = ENCODINGS[self.info.encoding][1]
        attributes = {FACE_ATTRIBUTE: meta.to_json(), "oiio:ColorSpace": self.info.colorspace}
        write_image(path, Image.from_array(image, fmt=channel_format, metadata=attributes))
        return path

    def _face_files(self) -> list[Path]:
        return sorted(
            p
            for p in self.root.iterdir()
            if p.suffix.lower() in FACE_FILE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        )

    def record(self, path: Path) -> FaceRecord | None:
        """The face at ``path`` with its metadata, or None (with a warning) when it has none or cannot be read."""
        try:
            header = read_header(path)
        except DflError as exc:
            log.warning("skipping %s: %s", path, exc)
            return None
        text = header.metadata.get(FACE_ATTRIBUTE)
        if not isinstance(text, str):
            log.warning("skipping %s: no %s metadata (not a dfl_vfx aligned face)", path, FACE_ATTRIBUTE)
            return None
        try:
            return FaceRecord(path, FaceMetadata.from_json(text, str(path)))
        except DflError as exc:
            log.warning("skipping %s", exc)
            return None

    def records(self) -> list[FaceRecord]:
        """Every face with readable metadata, sorted by file name (headers only; pixels are not read)."""
        return [record for record in map(self.record, self._face_files()) if record is not None]

    def read(self, record_or_path: FaceRecord | str | Path) -> np.ndarray:
        """Pixels of a face as float32 (S, S, 3) RGB in the working space."""
        if isinstance(record_or_path, FaceRecord):
            path = record_or_path.path
        else:
            path = Path(record_or_path)
            if len(path.parts) == 1:
                path = self.face_path(path.name)
        rgb = read_image(path).rgb()
        size = self.info.size
        if rgb.shape != (size, size, 3):
            raise DflError(f"{path}: face is {rgb.shape[1]}x{rgb.shape[0]} px, the faceset is {size}x{size}")
        return rgb

    def has(self, name: str) -> bool:
        return self.face_path(name).is_file()

    def remove(self, name: str) -> None:
        path = self.face_path(name)
        if not path.is_file():
            raise DflError(f"{path}: no such face in the faceset")
        path.unlink()

    def summary(self) -> dict[str, object]:
        """Counts and ranges for reports: frames, yaw/pitch in degrees, detectors, faces per source file."""
        records = self.records()
        frames = [r.meta.source_frame for r in records if r.meta.source_frame is not None]
        yaws = [math.degrees(r.meta.pose["yaw"]) for r in records]
        pitches = [math.degrees(r.meta.pose["pitch"]) for r in records]

        def span(values: list) -> tuple | None:
            return (min(values), max(values)) if values else None

        return {
            "count": len(records),
            "face_type": self.info.face_type,
            "size": self.info.size,
            "source_frames": span(frames),
            "yaw_degrees": span(yaws),
            "pitch_degrees": span(pitches),
            "detectors": dict(Counter(r.meta.detector for r in records)),
            "per_source": dict(sorted(Counter(r.meta.source_filename for r in records).items())),
        }

    def __len__(self) -> int:
        return len(self.records())

    def __repr__(self) -> str:
        return f"Faceset({str(self.root)!r}, {self.info.face_type}, {self.info.size}px, {self.info.encoding})"
