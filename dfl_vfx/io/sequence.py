"""Frame sequences: turn a user's plate spec (pattern, range form, directory or still) into frame paths.

Parsing is fileseq's. Padding characters follow fileseq's ``PAD_STYLE_HASH1`` everywhere: every ``#`` and
every ``@`` is one digit of zero padding (as in Nuke), so ``plate.####.exr``, ``plate.@@@@.exr``,
``plate.%04d.exr`` and ``plate.$F4.exr`` all mean four digits, and a lone ``#`` or ``@`` means no padding
(``plate.1.exr``, ``plate.1001.exr``). fileseq's default ``HASH4`` style, where one ``#`` means four digits,
is never used. Padding is strict: ``plate.#.exr`` does not match ``plate.0001.exr``; the error then names
the padding found on disk.

A :class:`FrameSequence` stores its pattern in printf form (``/shots/plate.%04d.exr``); a still image
without a frame number keeps its plain path as the pattern and is the same file for every frame.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import fileseq

from dfl_vfx.errors import DflError

IMAGE_EXTENSIONS: tuple[str, ...] = ("exr", "png", "jpg", "jpeg", "tif", "tiff", "dpx")
PAD_STYLE = fileseq.PAD_STYLE_HASH1

_FRAME_EXAMPLES = "e.g. --frames 1001-1100, 1001-1100x2, 1001,1005,1010-1020 or 1001"
_RANGE_START_END = re.compile(r"^\s*(-?\d+(?:\.\d*)?)\s*-\s*(-?\d+(?:\.\d*)?)")
_PRINTF_TOKEN = re.compile(r"^(?P<head>.*)%(?P<width>0\d+)?d(?P<tail>.*?)$", re.DOTALL)


def _refuse_descending_ranges(spec: str) -> None:
    """DflError for a range written high to low (``1010-1001``), suggesting the same frames written upwards.

    fileseq counts such a range down, but a farm chunk never means that: a swapped start and end is a typo.
    """
    chunks = spec.strip().split(",")
    upward = []
    for chunk in chunks:
        match = _RANGE_START_END.match(chunk)
        if match and Decimal(match[1]) > Decimal(match[2]):
            frames = sorted(fileseq.FrameSet(chunk.strip()))
            upward.append(fileseq.framesToFrameRange(frames))
        else:
            upward.append(chunk.strip())
    if upward != [chunk.strip() for chunk in chunks]:
        raise DflError(
            f"--frames {spec!r} counts down; frame ranges run from the first frame to the last: "
            f"use --frames {','.join(upward)}"
        )


def format_frames(frames: list[int] | tuple[int, ...] | set[int]) -> str:
    """fileseq's compact spelling of frame numbers, the same syntax ``--frames`` reads: ``1001-1004,1010``,
    ``1001-1099x2``; empty for no frames."""
    return str(fileseq.FrameSet(sorted(set(frames))).frange) if frames else ""


def parse_frames(spec: str) -> list[int]:
    """Whole frame numbers of a ``--frames`` value, in the order written; a range written high to low
    (``1010-1001``) is a DflError suggesting ``1001-1010``."""
    try:
        frame_set = fileseq.FrameSet(spec.strip())
    except fileseq.FileSeqException as exc:
        raise DflError(f"--frames {spec!r} is not a frame range ({_FRAME_EXAMPLES})") from exc
    frames = list(frame_set)
    if not frames:
        raise DflError(f"--frames {spec!r} names no frames ({_FRAME_EXAMPLES})")
    if any(isinstance(frame, Decimal) and frame != int(frame) for frame in frames):
        raise DflError(f"--frames {spec!r} has sub-frames; use whole frame numbers ({_FRAME_EXAMPLES})")
    _refuse_descending_ranges(spec)
    return [int(frame) for frame in frames]


def _printf_pattern(head: str, zfill: int, tail: str) -> str:
    token = f"%0{zfill}d" if zfill > 1 else "%d"
    return f"{head}{token}{tail}"


def _split_printf(pattern: str) -> tuple[str, int, str] | None:
    """(head, zero-fill width, tail) around the last ``%d``/``%0Nd`` token, or None for a plain path."""
    match = _PRINTF_TOKEN.match(pattern)
    if match is None:
        return None
    width = int(match["width"]) if match["width"] else 1
    return match["head"], width, match["tail"]


@dataclass
class FrameSequence:
    """A printf pattern (``/shots/plate.%04d.exr``) and the frames wanted from it."""

    pattern: str
    frames: list[int]

    def path(self, frame: int) -> Path:
        parts = _split_printf(self.pattern)
        if parts is None:
            return Path(self.pattern)
        head, width, tail = parts
        return Path(f"{head}{frame:0{width}d}{tail}")

    def paths(self) -> list[Path]:
        return [self.path(frame) for frame in self.frames]

    def missing(self) -> list[int]:
        """Frames whose file does not exist."""
        return [frame for frame in self.frames if not self.path(frame).is_file()]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def first(self) -> int:
        """Lowest frame number."""
        return min(self.frames)

    @property
    def last(self) -> int:
        """Highest frame number."""
        return max(self.frames)

    @property
    def padding(self) -> int | None:
        """Zero-fill width of the frame number, or None for a still without one."""
        parts = _split_printf(self.pattern)
        return None if parts is None else parts[1]

    def stem(self, frame: int) -> str:
        """File name of a frame without its extension, e.g. ``plate.1001``."""
        return self.path(frame).stem


def _is_image_extension(extension: str) -> bool:
    return extension.lower().rpartition(".")[2] in IMAGE_EXTENSIONS


def _check_extension(extension: str, spec: str) -> None:
    if not _is_image_extension(extension):
        supported = ", ".join(IMAGE_EXTENSIONS)
        raise DflError(f"{spec}: not an image sequence this tool reads (supported extensions: {supported})")


def _parse_spec(spec: str) -> fileseq.FileSequence:
    try:
        return fileseq.FileSequence(spec, pad_style=PAD_STYLE)
    except fileseq.FileSeqException as exc:
        raise DflError(
            f"{spec}: not a sequence pattern (use plate.%04d.exr, plate.####.exr, plate.@@@@.exr, "
            "plate.1001-1100#.exr, a directory or a file)"
        ) from exc


def _pattern_of(seq: fileseq.FileSequence) -> str:
    head = f"{seq.dirname()}{seq.basename()}"
    if not seq.padding():
        return f"{head}{seq.extension()}"
    return _printf_pattern(head, seq.zfill(), seq.extension())


def _image_sequences_in(directory: Path) -> list[fileseq.FileSequence]:
    found = fileseq.findSequencesOnDisk(str(directory), pad_style=PAD_STYLE)
    return [seq for seq in found if _is_image_extension(seq.extension())]


def _from_directory(directory: Path) -> fileseq.FileSequence:
    found = _image_sequences_in(directory)
    if not found:
        raise DflError(f"{directory}: no image sequence inside ({', '.join(IMAGE_EXTENSIONS)})")
    if len(found) > 1:
        names = ", ".join(sorted(f"{s.basename()}{s.frameRange()}{s.padding()}{s.extension()}" for s in found))
        raise DflError(f"{directory}: holds several image sequences ({names}); name one of them")
    return found[0]


def _padded_pattern(seq: fileseq.FileSequence) -> str:
    return seq.format("{dirname}{basename}{padding}{extension}")


def _frames_on_disk(seq: fileseq.FileSequence, spec: str) -> list[int]:
    try:
        found = fileseq.findSequenceOnDisk(_padded_pattern(seq), strictPadding=True, pad_style=PAD_STYLE)
    except fileseq.FileSeqException:
        raise DflError(f"{spec}: no files match this pattern{_disk_hint(seq)}") from None
    frames = [int(frame) for frame in found.frameSet()]
    return list(range(min(frames), max(frames) + 1))


def _disk_hint(seq: fileseq.FileSequence) -> str:
    """What is on disk under the pattern's name, ignoring its padding, to put in an error."""
    if not seq.padding():
        return ""
    try:
        loose = fileseq.findSequenceOnDisk(_padded_pattern(seq), strictPadding=False, pad_style=PAD_STYLE)
    except fileseq.FileSeqException:
        return ""
    if loose.zfill() != seq.zfill():
        return f" (on disk: {loose}, {loose.zfill()}-digit padding; each # or @ is one digit)"
    return f" (on disk: {loose})"


def check_within_plate(plate: str, asked: str, wanted: list[int], on_disk: list[int]) -> None:
    """The rule every command's ``--frames`` follows: frames before the plate's first or after its last frame on
    disk are refused (a DflError naming the plate, its range and the asked range) before any work; holes inside
    that range are not refused here (each command reports them as missing frames)."""
    first, last = min(on_disk), max(on_disk)
    outside = [frame for frame in wanted if not first <= frame <= last]
    if outside:
        raise DflError(f"--frames {asked.strip()}: frame(s) {format_frames(outside)} outside the plate {plate} "
                       f"(frames {first}-{last} on disk); choose frames within {first}-{last}")


def open_sequence(spec: str, frames: str | None = None) -> FrameSequence:
    """Resolve a plate spec to a :class:`FrameSequence`.

    ``spec`` is a pattern (``name.%04d.exr``, ``name.####.exr``, ``name.@@@@.exr``, ``name.$F4.exr``), a
    fileseq range form (``name.1001-1100#.exr``), a directory holding exactly one image sequence, or a single
    image file (frame 0, or the number in its name; a still without a number is held for every frame). The
    frames are ``frames`` parsed by :func:`parse_frames` when given (refused by :func:`check_within_plate` when
    they reach outside the sequence's first..last frame on disk), else the range written in the spec, else
    every frame from the first to the last file on disk (gaps are reported by
    :meth:`FrameSequence.missing`).
    """
    spec_path = Path(spec).expanduser()
    if spec_path.is_dir():
        seq = _from_directory(spec_path)
        frame_set = seq.frameSet()
        disk_frames = [int(frame) for frame in frame_set] if frame_set is not None else [0]
    elif spec_path.is_file():
        seq = _parse_spec(str(spec_path))
        _check_extension(seq.extension(), spec)
        disk_frames = [int(seq.frameSet()[0])] if seq.frameSet() is not None else [0]
    else:
        seq = _parse_spec(str(spec_path))
        _check_extension(seq.extension(), spec)
        if not seq.padding():
            raise DflError(f"{spec}: no such file or directory")
        disk_frames = []

    if frames is not None:
        wanted = parse_frames(frames)
        if not spec_path.is_file():  # a numbered file names one frame of its sequence, a still every frame
            check_within_plate(spec, frames, wanted, disk_frames or _frames_on_disk(seq, spec))
    elif disk_frames:
        wanted = list(range(min(disk_frames), max(disk_frames) + 1))
    elif seq.frameSet() is not None:
        wanted = [int(frame) for frame in seq.frameSet()]
    else:
        wanted = _frames_on_disk(seq, spec)

    sequence = FrameSequence(pattern=_pattern_of(seq), frames=wanted)
    if len(sequence.missing()) == len(sequence):
        raise DflError(
            f"{spec}: no files found for frames {sequence.first}-{sequence.last} of {sequence.pattern}"
            f"{_disk_hint(seq)}"
        )
    return sequence


def output_sequence(template: str, like: FrameSequence) -> FrameSequence:
    """Output sequence for frames derived from ``like``: same frames and, unless the template says, padding.

    ``template`` is a directory (existing, or written with a trailing separator): the input's file name is
    reused there; a pattern with its own frame token (``/out/comp.%04d.exr``, ``/out/comp.####.exr``): kept
    as written; or a plain name (``/out/comp.exr``, ``/out/comp``): the input's padding goes before the
    extension, which defaults to the input's. Nothing is created on disk.
    """
    template = os.path.expanduser(template)
    if template.endswith(("/", os.sep)) or Path(template).is_dir():
        return FrameSequence(pattern=os.path.join(template, Path(like.pattern).name), frames=list(like.frames))

    seq = _parse_spec(template)
    extension = seq.extension() or Path(like.pattern).suffix
    _check_extension(extension, template)
    head = f"{seq.dirname()}{seq.basename()}"
    like_padding = like.padding
    if seq.padding():
        pattern = _printf_pattern(head, seq.zfill(), extension)
    elif like_padding is None:
        pattern = f"{head}{extension}"
    else:
        separator = "" if head.endswith((".", "_", "-", "/")) else "."
        pattern = _printf_pattern(f"{head}{separator}", like_padding, extension)
    return FrameSequence(pattern=pattern, frames=list(like.frames))
