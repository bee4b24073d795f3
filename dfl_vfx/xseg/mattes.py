"""Import compositors' mattes (Nuke or Blender roto renders, one per plate frame) as XSeg labels of the faces.

A matte sequence (``roto.####.exr``, ``roto.%04d.png``) is read one frame at a time: the named channel (``A`` by
default; a file with a single channel gives that one) over the file's data window, in plate pixel coordinates
(data-window origin included, so overscan renders line up), is warped into each face of that frame through the
face's ``image_to_face_mat`` (bilinear, as the face crop but without lanczos ringing on hard roto edges), clipped
to [0, 1] and stored as ``FACESET/xseg_labels/<face stem>.png`` (16-bit grey, atomic). :func:`label_mask` reads it
back for faces that have no polygons.

Size rule: a matte must have the plate's format. Faces extracted by dfl_vfx record the plate's display window
(``extra["display_window"]``); a matte whose display window differs is refused. Faces without it (imported from
DeepFaceLab) take the matte as it is, in the frame pixels their matrix was made for. All mattes are found and their
headers checked before any label is written, so a missing frame or a wrong size changes nothing on disk.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.face.crop import crop_face_at
from dfl_vfx.faceset.faceset import FaceRecord, Faceset
from dfl_vfx.io.image import Image, read_header, read_image, write_image
from dfl_vfx.io.sequence import FrameSequence, format_frames, open_sequence, parse_frames
from dfl_vfx.xseg.labels import matte_label_path

DEFAULT_CHANNEL = "A"


@dataclass
class MatteImport:
    """What an import did: labels written, the frames they came from, faces left out and why."""

    written: list[Path] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # face file name -> reason


def _channel_name(header: Image, channel: str, path: Path) -> str:
    if channel in header.channels:
        return channel
    if channel == DEFAULT_CHANNEL and len(header.channels) == 1:
        return header.channels[0]  # a grey roto render: its one channel is the matte
    raise DflError(f"{path}: no channel {channel!r} (has {', '.join(header.channels)}); pass --channel with one "
                   "of these")


def _check_format(header: Image, record: FaceRecord, path: Path) -> None:
    window = record.meta.extra.get("display_window")
    if not isinstance(window, list) or len(window) != 4:
        return
    dw = header.display_window
    if [dw.x, dw.y, dw.width, dw.height] != [int(v) for v in window]:
        raise DflError(
            f"{path}: matte is {dw.width}x{dw.height} (display window at {dw.x},{dw.y}), the plate of "
            f"{record.path.name} is {window[2]}x{window[3]} (at {window[0]},{window[1]}); render the matte at the "
            "plate's format"
        )


def matte_to_face(matte: np.ndarray, origin: tuple[int, int], record: FaceRecord) -> np.ndarray:
    """A plate-space matte (H, W) whose pixel (0, 0) lies at ``origin`` warped into the face: float32 (S, S)."""
    size = record.meta.size
    warped = crop_face_at(matte[:, :, None], None, origin, record.meta.matrix(), size, interpolation="linear")
    return np.clip(warped[:, :, 0], 0.0, 1.0)


def _faces_by_frame(records: list[FaceRecord], wanted: list[int] | None,
                    report: MatteImport) -> dict[int, list[FaceRecord]]:
    by_frame: dict[int, list[FaceRecord]] = defaultdict(list)
    for record in records:
        frame = record.meta.source_frame
        if frame is None:
            report.skipped[record.path.name] = "no frame number (a still)"
        elif wanted is None or frame in wanted:
            by_frame[frame].append(record)
    return dict(sorted(by_frame.items()))


def import_mattes(faceset: Faceset, matte_pattern: str, frames: str | list[int] | None = None,
                  channel: str = DEFAULT_CHANNEL) -> MatteImport:
    """Import the mattes of ``matte_pattern`` as labels of the faces of ``frames`` (default: every face's frame).

    A missing matte, a matte of another format than the plate or a missing channel is a DflError naming the
    file, raised before anything is written.
    """
    records = faceset.records()
    if not records:
        raise DflError(f"{faceset.root}: the faceset has no faces; extract or import faces before importing mattes")
    wanted = parse_frames(frames) if isinstance(frames, str) else (None if frames is None else list(frames))
    report = MatteImport()
    by_frame = _faces_by_frame(records, wanted, report)
    if not by_frame:
        which = f"frames {format_frames(wanted)}" if wanted else "any frame"
        raise DflError(f"{faceset.root}: no face comes from {which}; check --frames against the faceset's frames")
    sequence = FrameSequence(open_sequence(matte_pattern).pattern, list(by_frame))  # each missing matte named below
    missing = sequence.missing()
    if missing:
        raise DflError(f"{sequence.path(missing[0])}: matte not found ({len(missing)} of {len(sequence)} frames "
                       f"missing: {format_frames(missing)}); render them or limit --frames to the frames you have")
    channels = {}
    for frame, faces in by_frame.items():
        path = sequence.path(frame)
        header = read_header(path)
        channels[frame] = _channel_name(header, channel, path)
        for record in faces:
            _check_format(header, record, path)
    for frame, faces in by_frame.items():
        image = read_image(sequence.path(frame), channels=[channels[frame]])
        matte = np.nan_to_num(image.pixels[:, :, 0], nan=0.0, posinf=1.0, neginf=0.0)
        origin = (image.data_window.x, image.data_window.y)
        for record in faces:
            target = matte_label_path(faceset, record)
            write_image(target, Image.from_array(matte_to_face(matte, origin, record), fmt="uint16"))
            report.written.append(target)
        report.frames.append(frame)
    return report
