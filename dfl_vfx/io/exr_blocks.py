"""Scanline EXR files block by block: a derived frame written from its plate, re-using the plate's compressed blocks.

A swap changes only the rows around the faces. A scanline EXR stores its rows in independently compressed blocks
(16 lines for ZIP, 1 for ZIPS and NONE), so the delivered frame can take every block the swap did not touch from
the plate file byte for byte (its line and size checked, its bytes not decoded) and compress only the
blocks that hold changed rows. The header is the plate's own, attribute for attribute, with the swap's string
attributes set: channels, windows, compression, line order and every other attribute stay as the plate had them.

This module owns the file format side of that: :func:`open_blocks` parses a plate (or says why it cannot be reused:
tiled, multi-part, deep, another codec, subsampled channels, damaged), :meth:`PlateBlocks.reuse_reason` checks that a
derived image has the plate's layout, and :func:`write_from_plate` writes the file. Changed blocks are deflated with
ISA-L (``isal``, a zlib-compatible encoder several times faster than zlib at its fastest levels) after EXR's byte
interleave and delta predictor. The EXR layout facts come from the OpenEXR file-layout documentation.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from isal import isal_zlib

from dfl_vfx.errors import ImageReadError

__all__ = ["DEFLATE_LEVEL", "REUSABLE_COMPRESSIONS", "BlockReuse", "PlateBlocks", "open_blocks", "write_from_plate"]

_MAGIC = b"\x76\x2f\x31\x01"
_TILED, _NON_IMAGE, _MULTIPART = 0x200, 0x800, 0x1000
# compression id -> (name as OpenImageIO spells it, scanlines per block); the codecs this module can encode
REUSABLE_COMPRESSIONS: dict[int, tuple[str, int]] = {0: ("none", 1), 2: ("zips", 1), 3: ("zip", 16)}
_CODEC_NAMES = {1: "rle", 4: "piz", 5: "pxr24", 6: "b44", 7: "b44a", 8: "dwaa", 9: "dwab", 10: "htj2k256",
                11: "htj2k32"}
# EXR pixel type -> (numpy type, OpenImageIO format name)
_PIXEL_TYPES: dict[int, tuple[type[np.generic], str]] = {0: (np.uint32, "uint32"), 1: (np.float16, "half"),
                                                         2: (np.float32, "float")}
# isal_zlib level for the blocks this module compresses (0..3). Level 1 writes a 4K half RGBA frame's blocks in about a
# quarter of zlib level 1's time, within 2 % of its size (bench/results/swap-cpu-2core.json).
DEFLATE_LEVEL = 1
_HEADER_LIMIT = 16 << 20  # a header larger than this is not a plate header


@dataclass(frozen=True)
class _Channel:
    name: str
    pixel_type: int


@dataclass
class PlateBlocks:
    """A single-part scanline EXR's header and block table, parsed without decoding pixels."""

    path: Path
    version: int  # the version field with its flags, written back unchanged
    attributes: list[tuple[str, str, bytes]]  # (name, type, raw value) in file order
    channels: list[_Channel]  # in file (sorted) order
    x_min: int
    y_min: int
    width: int
    height: int
    compression: str
    lines_per_block: int
    offsets: np.ndarray  # uint64, one per block, in block order
    file_size: int

    @property
    def block_count(self) -> int:
        return len(self.offsets)

    def reuse_reason(self, channels: Sequence[str], formats: Sequence[str], data_window: tuple[int, int, int, int],
                     compression: str) -> str | None:
        """None when an image with these channels, per-channel formats, data window (x, y, w, h) and compression can
        be written from this plate's blocks; otherwise why not."""
        if compression != self.compression:
            return f"compression {compression or 'unset'} differs from the plate's {self.compression}"
        if data_window != (self.x_min, self.y_min, self.width, self.height):
            return "the data window differs from the plate's"
        own = {c.name: _PIXEL_TYPES[c.pixel_type][1] for c in self.channels}
        if sorted(channels) != sorted(own) or len(set(channels)) != len(channels):
            return "the channels differ from the plate's"
        if any(own[name] != fmt for name, fmt in zip(channels, formats, strict=True)):
            return "a channel's pixel type differs from the plate's"
        if "uint32" in own.values():  # read as normalised floats: a cast back to uint would zero the ids
            return "a uint channel (its rows are read as float; written whole, they convert back as they came)"
        return None


@dataclass
class BlockReuse:
    """How to write a frame derived from ``plate``: its blocks re-used except where a row of ``changed_rows``
    (absolute, end-exclusive) lies, its header with the string attributes ``strings`` set."""

    plate: PlateBlocks
    changed_rows: list[tuple[int, int]]
    strings: dict[str, str]


def _parse_header(data: bytes) -> tuple[list[tuple[str, str, bytes]], int] | None:
    """The attributes (name, type, raw value) after magic and version, and where the block table starts; None when
    ``data`` ends before the header does."""
    attributes: list[tuple[str, str, bytes]] = []
    at = 8
    while at < len(data):
        if data[at] == 0:
            return attributes, at + 1
        name_end = data.find(b"\0", at)
        type_end = data.find(b"\0", name_end + 1) if name_end >= 0 else -1
        if type_end < 0 or type_end + 5 > len(data):
            return None
        length = struct.unpack_from("<i", data, type_end + 1)[0]
        start = type_end + 5
        if length < 0 or start + length > len(data):
            return None
        attributes.append((data[at:name_end].decode("latin-1"), data[name_end + 1:type_end].decode("latin-1"),
                           bytes(data[start:start + length])))
        at = start + length
    return None


def _parse_channels(value: bytes) -> list[_Channel] | None:
    """The channel list, or None when a channel is subsampled or of an unknown type."""
    channels, at = [], 0
    while at < len(value) and value[at] != 0:
        end = value.index(b"\0", at)
        name = value[at:end].decode("utf-8", "replace")
        pixel_type, _linear, x_sampling, y_sampling = struct.unpack_from("<iB3xii", value, end + 1)
        if pixel_type not in _PIXEL_TYPES or x_sampling != 1 or y_sampling != 1:
            return None
        channels.append(_Channel(name, pixel_type))
        at = end + 1 + 16
    return channels


def open_blocks(path: str | os.PathLike[str]) -> tuple[PlateBlocks | None, str]:
    """(the plate's blocks, "") when its compressed blocks can be reused, else (None, why not).

    Reusable: a single-part scanline EXR (not tiled, deep or multi-part) in increasing line order, whose channels are
    half, float or uint at full resolution, compressed with NONE, ZIPS or ZIP. A block table pointing outside the
    file is an ImageReadError naming it (the file is truncated).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        data = handle.read(min(size, 1 << 16))
        if data[:4] != _MAGIC:
            return None, "not an EXR file"
        version = struct.unpack_from("<i", data, 4)[0]
        if version & (_TILED | _NON_IMAGE | _MULTIPART):
            return None, "tiled, deep or multi-part EXR"
        parsed = _parse_header(data)
        while parsed is None and len(data) < min(size, _HEADER_LIMIT):
            data += handle.read(min(size, _HEADER_LIMIT) - len(data))
            parsed = _parse_header(data)
    if parsed is None:
        raise ImageReadError(f"{path}: truncated EXR header; re-render the file")
    attributes, at = parsed
    values = {name: (type_name, value) for name, type_name, value in attributes}
    for required in ("channels", "compression", "dataWindow", "lineOrder"):
        if required not in values:
            return None, f"no {required} attribute"
    channels = _parse_channels(values["channels"][1])
    if not channels:
        return None, "subsampled or unknown channel types"
    code = values["compression"][1][0]
    if code not in REUSABLE_COMPRESSIONS:
        return None, f"{_CODEC_NAMES.get(code, str(code))} compression"
    if values["lineOrder"][1][0] != 0:
        return None, "not in increasing line order"
    x_min, y_min, x_max, y_max = struct.unpack("<4i", values["dataWindow"][1])
    name, lines = REUSABLE_COMPRESSIONS[code]
    height = y_max - y_min + 1
    count = -(-height // lines)
    with open(path, "rb") as handle:
        handle.seek(at)
        table = handle.read(8 * count)
    offsets = np.frombuffer(table, "<u8").astype(np.uint64)
    if len(offsets) != count or (count and (int(offsets.max()) + 8 > size or int(offsets.min()) < at + 8 * count)):
        raise ImageReadError(f"{path}: truncated EXR file (its block table points past the end); re-render it")
    return PlateBlocks(path, version, attributes, channels, x_min, y_min, x_max - x_min + 1, height, name, lines,
                       offsets, size), ""


def _interleave_predict(raw: np.ndarray) -> np.ndarray:
    """EXR's ZIP pre-pass: even bytes then odd bytes, then each byte as the difference to the previous + 128."""
    shuffled = np.concatenate((raw[0::2], raw[1::2]))
    out = np.empty_like(shuffled)
    out[0] = shuffled[0]
    np.subtract(shuffled[1:], shuffled[:-1], out=out[1:])
    out[1:] += 128
    return out


def _block_bytes(pixels: np.ndarray, order: list[int], types: list[type[np.generic]]) -> np.ndarray:
    """The uncompressed bytes of the rows ``pixels`` (lines, W, C): per line, each channel's row in file order."""
    lines = pixels.shape[0]
    if all(t == pixels.dtype.type for t in types):
        block = np.ascontiguousarray(pixels[:, :, order].transpose(0, 2, 1))
        return block.view(np.uint8).reshape(-1)
    rows = [np.ascontiguousarray(pixels[:, :, i], dtype=t).view(np.uint8).reshape(lines, -1)
            for i, t in zip(order, types, strict=True)]
    return np.concatenate(rows, axis=1).reshape(-1)


def _encode(raw: np.ndarray, compression: str) -> bytes:
    if compression == "none":
        return raw.tobytes()
    packed = isal_zlib.compress(_interleave_predict(raw), DEFLATE_LEVEL)
    return packed if len(packed) < raw.size else raw.tobytes()  # EXR stores a block raw when deflate does not help


def _string_attribute(name: str, value: str) -> tuple[str, str, bytes]:
    return name, "string", value.encode("utf-8")


def _header_bytes(plate: PlateBlocks, strings: Mapping[str, str]) -> bytes:
    attributes = [_string_attribute(name, strings[name]) if name in strings else (name, kind, value)
                  for name, kind, value in plate.attributes]
    known = {name for name, _, _ in plate.attributes}
    attributes += [_string_attribute(name, value) for name, value in strings.items() if name not in known]
    parts = [_MAGIC, struct.pack("<i", plate.version)]
    for name, kind, value in attributes:
        parts += [name.encode("latin-1"), b"\0", kind.encode("latin-1"), b"\0", struct.pack("<i", len(value)), value]
    parts.append(b"\0")
    return b"".join(parts)


def _changed_blocks(plate: PlateBlocks, changed_rows: Sequence[tuple[int, int]]) -> np.ndarray:
    """Whether each block holds a row of ``changed_rows`` (absolute, end-exclusive (y0, y1) ranges)."""
    changed = np.zeros(plate.block_count, bool)
    for y0, y1 in changed_rows:
        a, b = max(y0, plate.y_min) - plate.y_min, min(y1, plate.y_min + plate.height) - plate.y_min
        if b > a:
            changed[a // plate.lines_per_block:(b - 1) // plate.lines_per_block + 1] = True
    return changed


def write_from_plate(target: str | os.PathLike[str], plate: PlateBlocks, pixels: np.ndarray, channels: Sequence[str],
                     changed_rows: Sequence[tuple[int, int]], strings: Mapping[str, str]) -> dict[str, int]:
    """Write ``target``: the plate's header with the string attributes ``strings`` set, the plate's own blocks
    where no row of ``changed_rows`` lies, and ``pixels`` (H, W, C over the plate's data window, channels named
    ``channels``) compressed where one does. Returns {"copied": n, "encoded": m} blocks.

    A copied block whose line or size does not fit the plate is an ImageReadError naming the plate (damaged).
    """
    index = {name: i for i, name in enumerate(channels)}
    order = [index[c.name] for c in plate.channels]
    types = [_PIXEL_TYPES[c.pixel_type][0] for c in plate.channels]
    line_bytes = plate.width * sum(np.dtype(t).itemsize for t in types)
    changed = _changed_blocks(plate, changed_rows)
    header = _header_bytes(plate, strings)
    offsets = np.zeros(plate.block_count, "<u8")
    position = len(header) + 8 * plate.block_count
    with open(plate.path, "rb") as source, open(target, "wb") as out:
        out.write(header)
        out.write(offsets.tobytes())  # filled in at the end
        descriptor = source.fileno()
        for block in range(plate.block_count):
            first = block * plate.lines_per_block
            lines = min(plate.lines_per_block, plate.height - first)
            y = plate.y_min + first
            if changed[block]:
                data = _encode(_block_bytes(pixels[first:first + lines], order, types), plate.compression)
                chunk = struct.pack("<ii", y, len(data)) + data
            else:
                chunk = _plate_chunk(plate, descriptor, block, y, lines * line_bytes)
            offsets[block] = position
            out.write(chunk)
            position += len(chunk)
        out.seek(len(header))
        out.write(offsets.tobytes())
    copied = int(plate.block_count - changed.sum())
    return {"copied": copied, "encoded": plate.block_count - copied}


def _plate_chunk(plate: PlateBlocks, descriptor: int, block: int, y: int, unpacked: int) -> bytes:
    """One block of the plate as stored (y, size, data). Its structure is checked (its line, a size no larger than
    the block's pixels, inside the file); its compressed bytes are copied as they are, not decoded."""
    offset = int(plate.offsets[block])
    head = os.pread(descriptor, 8, offset)
    stored_y, size = struct.unpack("<ii", head) if len(head) == 8 else (None, -1)
    if stored_y != y or size <= 0 or size > unpacked or offset + 8 + size > plate.file_size:
        raise ImageReadError(f"{plate.path}: damaged EXR block at line {y}; re-render the plate")
    data = os.pread(descriptor, size, offset + 8)
    if len(data) != size:
        raise ImageReadError(f"{plate.path}: damaged EXR block at line {y}; re-render the plate")
    return head + data
