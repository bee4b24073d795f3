"""Where a swapped frame's files and layers live, and how to read the layers back (docs/dev/swap-output.md).

A swapped frame is two files. ``OUT/NAME.FRAME.exr`` is the delivered frame: the plate's channels with ``R G B A``
swapped, the plate's windows and compression. ``OUT/layers/NAME.FRAME.exr`` (same name, in a ``layers/``
subfolder) is its companion: one part holding every other requested layer (``mask.A``, ``matte.A``,
``face.RGBA``, ``raw.RGBA``) with the same header attributes, the plate's display window and a data window that
covers only the faces (``layer_window`` "face": the union of the faces' ``bbox``) or exactly the display window
("display", for hosts that ignore data windows). Outside that window every layer is 0, so nothing is lost.

This module owns that layout: the companion's path, its data window, channels and compression, building it from
the engine's plate-sized layers, the rerun check over both files, and :func:`read_layers`, which rebuilds
plate-sized layers (zero-padded to the delivered frame's data window) for tests, ``eval`` and ``serve``'s
``inspect``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.io.image import Image, Window, interleave_channels, read_header, read_image
from dfl_vfx.schema import LAYER_WINDOW_CHOICES

__all__ = ["LAYERS_COMPRESSION", "LAYERS_FOLDER", "LAYER_CHANNELS", "LAYER_WINDOWS", "frame_path",
           "frame_written_with", "layer_channels", "layer_window", "layers_image", "layers_path", "read_layers",
           "wants_layers_file"]

LAYERS_FOLDER = "layers"
LAYER_WINDOWS = LAYER_WINDOW_CHOICES
# the companion's channels per layer, in the order they are written and read back (EXR sorts layers by name)
LAYER_CHANNELS: dict[str, tuple[str, ...]] = {
    "face": ("face.R", "face.G", "face.B", "face.A"),
    "mask": ("mask.A",),
    "matte": ("matte.A",),
    "raw": ("raw.R", "raw.G", "raw.B", "raw.A"),
    "xseg": ("xseg.A",),
}
# the layers file's codec, measured on a 4K frame's face layers (bench/results/swap-cpu-2core.json, layout.codecs):
# lossless; ZIP at level 1 writes in the least CPU time of the ZIP family, and in 16-line blocks (not zips' single
# lines) it reads back as fast as zip at a size between zip's and zips'. Hosts re-read it on every scrub. The
# delivered frame keeps the plate's own compression.
LAYERS_COMPRESSION = "zip:1"


def layers_path(frame: str | os.PathLike[str]) -> Path:
    """The companion of a delivered frame: ``OUT/NAME.FRAME.exr`` -> ``OUT/layers/NAME.FRAME.exr``."""
    frame = Path(frame)
    return frame.parent / LAYERS_FOLDER / frame.name


def frame_path(layers: str | os.PathLike[str]) -> Path:
    """The delivered frame of a companion: ``OUT/layers/NAME.FRAME.exr`` -> ``OUT/NAME.FRAME.exr``."""
    layers = Path(layers)
    return layers.parent.parent / layers.name


def wants_layers_file(layers: Iterable[str]) -> bool:
    """Whether ``--layers`` asks for anything beyond ``rgba`` (then the companion is written)."""
    return any(layer != "rgba" for layer in layers)


def layer_channels(names: Iterable[str]) -> list[str]:
    """The EXR channels of the named layers (``rgba`` has none in the companion), in the companion's order."""
    wanted = set(names)
    unknown = sorted(wanted - set(LAYER_CHANNELS) - {"rgba"})
    if unknown:
        raise DflError(f"unknown layer {unknown[0]!r}; choose from {', '.join(LAYER_CHANNELS)}")
    return [channel for layer, channels in LAYER_CHANNELS.items() if layer in wanted for channel in channels]


def layer_window(bboxes: Sequence[Sequence[int]], data_window: Window, display_window: Window,
                 mode: str = "face") -> Window:
    """The companion's data window.

    "face": the union of the faces' end-exclusive ``bbox`` (x0, y0, x1, y1), clipped to the plate's data window
    (empty boxes, of faces off the plate, left out); a frame without a face (or whose faces lie outside the data
    window) gets 1x1 at the display window's origin.
    "display": the display window itself.
    """
    if mode == "display":
        return display_window
    if mode != "face":
        raise DflError(f"layer_window {mode!r}: choose from {', '.join(LAYER_WINDOWS)}")
    boxes = np.asarray(bboxes, np.int64).reshape(-1, 4)
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]  # a face off the plate pastes nothing
    if len(boxes):
        x0 = max(int(boxes[:, 0].min()), data_window.x)
        y0 = max(int(boxes[:, 1].min()), data_window.y)
        x1 = min(int(boxes[:, 2].max()), data_window.right)
        y1 = min(int(boxes[:, 3].max()), data_window.bottom)
        if x1 > x0 and y1 > y0:
            return Window(x0, y0, x1 - x0, y1 - y0)
    return Window(display_window.x, display_window.y, 1, 1)


def _overlap(a: Window, b: Window) -> Window | None:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.right, b.right), min(a.bottom, b.bottom)
    return Window(x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None


def _crop(pixels: np.ndarray, source: Window, target: Window) -> np.ndarray:
    """``pixels`` (over ``source``) over ``target``: cut where they overlap, zeros elsewhere."""
    shape = (target.height, target.width) + pixels.shape[2:]
    if source == target:
        return pixels
    out = np.zeros(shape, pixels.dtype)
    common = _overlap(source, target)
    if common is not None:
        out[common.y - target.y:common.bottom - target.y, common.x - target.x:common.right - target.x] = \
            pixels[common.y - source.y:common.bottom - source.y, common.x - source.x:common.right - source.x]
    return out


def layers_image(frame: Image, layers: Mapping[str, np.ndarray], bboxes: Sequence[Sequence[int]],
                 mode: str = "face", fmt: str = "half") -> Image | None:
    """The companion of the delivered ``frame`` from the engine's plate-sized ``layers`` (by layer name, each
    (H, W) or (H, W, 4) over ``frame``'s data window); None when there is no layer to write.

    Channels ``LAYER_CHANNELS`` in order, all of ``fmt``; windows per :func:`layer_window`; ``frame``'s metadata
    (the swap header) without its compression, which the writer sets to :data:`LAYERS_COMPRESSION`.
    """
    names = [name for name in LAYER_CHANNELS if name in layers]
    if not names:
        return None
    window = layer_window(bboxes, frame.data_window, frame.display_window, mode)
    dtype = np.float16 if fmt == "half" else np.float32
    blocks = []
    for name in names:
        block = np.asarray(layers[name])
        block = block[..., None] if block.ndim == 2 else block
        blocks.append(np.ascontiguousarray(_crop(block, frame.data_window, window), dtype=dtype))
    channels = layer_channels(names)
    metadata = {k: v for k, v in frame.metadata.items() if k != "compression"}
    types = {k: v for k, v in frame.metadata_types.items() if k in metadata}
    return Image(pixels=interleave_channels(blocks), channels=channels, data_window=window,
                 display_window=frame.display_window, channel_formats=[fmt] * len(channels), metadata=metadata,
                 metadata_types=types, path=str(layers_path(frame.path)) if frame.path else "")


def _files(path: Path) -> tuple[Path, Path]:
    """(delivered frame, companion) from either of them: a companion holds no plain ``R`` channel."""
    if path.parent.name == LAYERS_FOLDER and path.is_file() and "R" not in read_header(path).channels:
        return frame_path(path), path
    return path, layers_path(path)


def read_layers(path: str | os.PathLike[str], names: Iterable[str],
                pixel_type: str = "float") -> dict[str, np.ndarray]:
    """The named layers of a swapped frame as plate-sized arrays, by layer name.

    ``path`` is the delivered frame or its companion. Each array covers the delivered frame's data window, zeros
    outside the companion's window: ``mask`` and ``matte`` (H, W), ``face`` and ``raw`` (H, W, 4). ``pixel_type``
    as :func:`~dfl_vfx.io.image.read_image` ("native" keeps half layers half). A frame written before the layers
    moved to the companion (the layers inside the delivered frame) reads the same. A missing file or layer is a
    one-line DflError saying what to re-render.
    """
    wanted = set(names)
    channels = layer_channels(wanted)
    names = [name for name in LAYER_CHANNELS if name in wanted]
    main, companion = _files(Path(path))
    if not main.is_file():
        raise DflError(f"{main}: no swapped frame here (the delivered frame of {companion}); render it with "
                       "`dfl-vfx swap`")
    frame = read_header(main)
    source = companion
    if not companion.is_file():
        if channels and set(channels) <= set(frame.channels):  # the layout before the companion file
            source = main
        elif channels:
            raise DflError(f"{companion}: layers file not found; render the frame with `dfl-vfx swap --layers "
                           f"rgba,{','.join(names)}`")
    if not channels:
        return {}
    held = read_header(source).channels
    missing = [name for name in names if not set(LAYER_CHANNELS[name]) <= set(held)]
    if missing:
        raise DflError(f"{source}: no {', '.join(missing)} layer (has {', '.join(held)}); re-render with "
                       f"`dfl-vfx swap --layers rgba,{','.join(names)}`")
    image = read_image(source, channels=channels, pixel_type=pixel_type)
    out: dict[str, np.ndarray] = {}
    start = 0
    for name in names:
        width = len(LAYER_CHANNELS[name])
        block = _crop(image.pixels[..., start:start + width], image.data_window, frame.data_window)
        out[name] = np.ascontiguousarray(block[..., 0] if width == 1 else block)
        start += width
    return out


def frame_written_with(frame: str | os.PathLike[str], settings_hash: str, layers: Iterable[str]) -> bool:
    """Whether a rerun may skip this frame: the delivered frame, and its companion when ``layers`` go beyond rgba,
    are whole files swapped with ``settings_hash``."""
    from dfl_vfx.swap.header import written_with

    frame = Path(frame)
    if not written_with(frame, settings_hash):
        return False
    return not wants_layers_file(layers) or written_with(layers_path(frame), settings_hash)
