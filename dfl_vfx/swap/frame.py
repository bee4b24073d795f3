"""One frame: read, find its faces, swap, write its two files. The single path that `dfl-vfx swap` and
`dfl-vfx serve` share.

When the plate is a scanline EXR whose blocks can be re-used (:mod:`dfl_vfx.io.exr_blocks`: NONE, ZIPS or ZIP, the
delivered frame keeping its codec and channels), the delivered frame is written from the plate's blocks, compressing
only the blocks of the rows a face changed; and when the faces are known before reading (a faceset's tracks), only
the rows the faces read or write are decoded (:meth:`SwapEngine.plate_rows`), so a frame costs what its faces
cover. Both give the same pixels as reading and writing the whole frame.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from dfl_vfx.io.exr_blocks import BlockReuse, PlateBlocks, open_blocks
from dfl_vfx.io.image import Image, lossless_compression, read_header, read_image, read_rows, write_images
from dfl_vfx.merge.merger import FacePlan, PastedFace
from dfl_vfx.swap.engine import FrameResult, StageTimes, SwapEngine, plate_channel_indices
from dfl_vfx.swap.faces import FaceFinder
from dfl_vfx.swap.header import FACES_ATTRIBUTE, SWAP_ATTRIBUTE
from dfl_vfx.swap.layout import LAYERS_COMPRESSION, layers_path

log = logging.getLogger(__name__)


@dataclass
class FrameOutcome:
    """What swapping one frame did."""

    frame: int
    target: Path
    faces: list[PastedFace]
    times: StageTimes


def plan_faces(engine: SwapEngine, image: Image, finder: FaceFinder) -> list[FacePlan]:
    """Detect the faces of a plate frame (a frame without colour channels fails here, in one line)."""
    rgb_idx, _ = plate_channel_indices(image)
    merger = engine.merger_for(engine.plate_space(image))
    return finder.plans(image.pixels[..., rgb_idx], (image.data_window.x, image.data_window.y),
                        merger.space.display_uint8)


def swap_frame(engine: SwapEngine, source: str | Path, target: str | Path, frame: int,
               plans: list[FacePlan] | None = None, finder: FaceFinder | None = None,
               compression: str | None = None) -> FrameOutcome:
    """Swap ``frame`` of the plate file ``source`` into ``target`` and, with layers beyond rgba, its companion
    ``layers/`` file (both written at once, atomically; ``compression`` is the delivered frame's, default the
    plate's unless it is lossy: then ZIP).

    ``plans``: the faces to swap (from a faceset's tracks); None detects them with ``finder``.
    """
    if plans is None and finder is None:
        raise ValueError("swap_frame needs plans or a finder")
    source, target = Path(source), Path(target)
    t0 = time.perf_counter()
    plate = plate_blocks(source, target)
    bands = None
    if plans is not None and plate is not None:
        header = read_header(source)
        if delivery_reuse(plate, header, compression) is None:
            bands = _block_rows(engine.plate_rows(header, plans), plate)
    image = read_image(source, pixel_type="native") if bands is None else read_rows(source, bands)
    read_s = time.perf_counter() - t0
    if plans is None:
        assert finder is not None
        plans = plan_faces(engine, image, finder)
    result = engine.swap_image(image, plans, frame)
    if bands is not None and not _rows_within([(f.bbox[1], f.bbox[3]) for f in result.faces], bands):
        log.warning("%s: a face reached rows that were not read; swapping the whole frame", source)
        image = read_image(source, pixel_type="native")
        result = engine.swap_image(image, plans, frame)
    result.times.read = read_s
    t = time.perf_counter()
    write_frame(target, result, compression, plate)
    result.times.write = time.perf_counter() - t
    return FrameOutcome(frame, target, result.faces, result.times)


def plate_blocks(source: Path, target: Path) -> PlateBlocks | None:
    """The plate's blocks when an EXR plate's delivered frame (an EXR) might be written from them, else None."""
    if source.suffix.lower() != ".exr" or target.suffix.lower() != ".exr" or not source.is_file():
        return None
    blocks, why = open_blocks(source)
    if blocks is None:
        log.debug("%s: the delivered frame is written whole (%s)", source, why)
    return blocks


def delivery_reuse(plate: PlateBlocks, image: Image, compression: str | None) -> str | None:
    """None when the delivered frame of ``image`` (written with ``compression``, see :func:`write_frame`) can be
    written from ``plate``'s blocks; otherwise why not (the plate has no alpha to carry the swap's, another
    codec or layout)."""
    if "A" not in image.channels:
        return "the plate has no alpha channel"
    window = image.data_window
    return plate.reuse_reason(image.channels, image.channel_formats, (window.x, window.y, window.width, window.height),
                              lossless_compression(image, compression))


def _block_rows(bands: list[tuple[int, int]], plate: PlateBlocks) -> list[tuple[int, int]]:
    """``bands`` grown to whole blocks of ``plate`` (a block is decoded whole anyway), merged where they meet."""
    step, top, bottom = plate.lines_per_block, plate.y_min, plate.y_min + plate.height
    grown: list[tuple[int, int]] = []
    for y0, y1 in bands:
        a = top + (max(y0, top) - top) // step * step
        b = min(bottom, top + -(-(min(y1, bottom) - top) // step) * step)
        if b <= a:
            continue
        if grown and a <= grown[-1][1]:
            grown[-1] = (grown[-1][0], max(grown[-1][1], b))
        else:
            grown.append((a, b))
    return grown


def _rows_within(rows: list[tuple[int, int]], bands: list[tuple[int, int]]) -> bool:
    return all(any(a >= y0 and b <= y1 for y0, y1 in bands) for a, b in rows if b > a)


def write_frame(target: str | Path, result: FrameResult, compression: str | None = None,
                plate: PlateBlocks | None = None) -> None:
    """Write a swapped frame to ``target`` and its layers to ``layers/`` beside it (docs/dev/swap-output.md), at
    once; ``compression`` is the delivered frame's (None: the plate's, or ZIP when the plate's is lossy, so pixels
    outside the matte stay bit-identical), the layers get ``LAYERS_COMPRESSION``. With ``plate`` (the plate's
    blocks) and a frame that fits them, the delivered frame re-uses every block of rows no face changed."""
    target = Path(target)
    files: list[tuple[Path, Image, str | None]] = []
    reuse: list[BlockReuse | None] = []
    if result.layers is not None:  # renamed first: whoever finds the frame finds its layers too
        files.append((layers_path(target), result.layers, LAYERS_COMPRESSION))
        reuse.append(None)
    else:  # layers of an earlier run with other settings would pass for this frame's
        stale = layers_path(target)
        stale.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the folder goes once empty; other frames' layers or temps keep it
            stale.parent.rmdir()
    image = result.image
    files.append((target, image, lossless_compression(image, compression) or None))
    if plate is not None and delivery_reuse(plate, image, compression) is None:
        strings = {name: str(image.metadata[name]) for name in (SWAP_ATTRIBUTE, FACES_ATTRIBUTE)
                   if name in image.metadata}
        reuse.append(BlockReuse(plate, [(face.bbox[1], face.bbox[3]) for face in result.faces], strings))
    else:
        reuse.append(None)
    write_images(files, reuse)
