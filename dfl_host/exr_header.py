"""Reading an OpenEXR file's header with the standard library: windows, channels and text attributes.

Hosts read the engine's ``dfl_vfx:faces`` header (the faces' size in pixels) from a baked frame, the delivered frame
or its layers file, to size the live erode and blur without starting the engine: the Nuke gizmos on load and before a
render (a bake the farm wrote), the Blender add-on after a bake. Blender also ignores EXR data and display windows
(hosts-reference.md §2.4), so the add-on reads them here to place the baked layers over a plate with overscan. Only
the first part of a multi-part file is read.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

MAGIC = 20000630
MAX_HEADER_BYTES = 16 * 1024 * 1024


class ExrHeaderError(ValueError):
    """Not an OpenEXR file, or a header cut short."""


@dataclass(frozen=True)
class Box:
    """An end-inclusive EXR box as (x_min, y_min, x_max, y_max) in the file's pixel space (y down)."""

    x_min: int
    y_min: int
    x_max: int
    y_max: int

    @property
    def width(self) -> int:
        return self.x_max - self.x_min + 1

    @property
    def height(self) -> int:
        return self.y_max - self.y_min + 1

    @property
    def centre(self) -> tuple[float, float]:
        """The box's centre in pixel coordinates (pixel centres at integers)."""
        return (self.x_min + self.x_max) / 2.0, (self.y_min + self.y_max) / 2.0


@dataclass(frozen=True)
class ExrHeader:
    data_window: Box
    display_window: Box
    channels: tuple[str, ...]
    text: dict[str, str] = field(default_factory=dict)  # string attributes by name

    def json_attribute(self, name: str) -> Any:
        """A string attribute holding JSON (the engine's ``dfl_vfx:*``), decoded; None when absent or not JSON."""
        value = self.text.get(name)
        if value is None:
            return None
        try:
            return json.loads(value)
        except ValueError:
            return None


def _cstring(data: bytes, start: int) -> tuple[str, int]:
    end = data.find(b"\0", start)
    if end < 0:
        raise ExrHeaderError("header cut short")
    return data[start:end].decode("utf-8", "replace"), end + 1


def _channels(value: bytes) -> tuple[str, ...]:
    names: list[str] = []
    pos = 0
    while pos < len(value) and value[pos] != 0:
        name, pos = _cstring(value, pos)
        names.append(name)
        pos += 16  # pixel type, pLinear + reserved, x and y sampling
    return tuple(names)


def parse_header(data: bytes) -> ExrHeader:
    """The header of the EXR whose first bytes are ``data`` (enough bytes to hold the whole first header)."""
    if len(data) < 8 or struct.unpack_from("<i", data, 0)[0] != MAGIC:
        raise ExrHeaderError("not an OpenEXR file")
    pos = 8
    boxes: dict[str, Box] = {}
    channels: tuple[str, ...] = ()
    text: dict[str, str] = {}
    while True:
        if pos >= len(data):
            raise ExrHeaderError("header cut short")
        if data[pos] == 0:
            break
        name, pos = _cstring(data, pos)
        kind, pos = _cstring(data, pos)
        if pos + 4 > len(data):
            raise ExrHeaderError("header cut short")
        (size,) = struct.unpack_from("<i", data, pos)
        pos += 4
        value = data[pos:pos + size]
        if len(value) < size:
            raise ExrHeaderError("header cut short")
        pos += size
        if kind == "box2i":
            boxes[name] = Box(*struct.unpack("<4i", value))
        elif kind == "chlist":
            channels = _channels(value)
        elif kind == "string":
            text[name] = value.decode("utf-8", "replace")
    if "dataWindow" not in boxes or "displayWindow" not in boxes:
        raise ExrHeaderError("no dataWindow or displayWindow")
    return ExrHeader(boxes["dataWindow"], boxes["displayWindow"], channels, text)


def read_header(path: str) -> ExrHeader:
    """The header of the EXR file at ``path``; :class:`ExrHeaderError` (with the path) when it is not one."""
    size = 1 << 16
    with open(path, "rb") as handle:
        while True:
            handle.seek(0)
            data = handle.read(size)
            try:
                return parse_header(data)
            except ExrHeaderError as exc:
                if str(exc) != "header cut short" or len(data) < size or size >= MAX_HEADER_BYTES:
                    raise ExrHeaderError(f"{path}: {exc}") from None
            size *= 4
