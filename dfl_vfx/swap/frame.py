"""One frame: read, find its faces, swap, write its two files. The single path that `dfl-vfx swap` and
`dfl-vfx serve` share."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from dfl_vfx.io.image import Image, lossless_compression, read_image, write_images
from dfl_vfx.merge.merger import FacePlan, PastedFace
from dfl_vfx.swap.engine import FrameResult, StageTimes, SwapEngine, plate_channel_indices
from dfl_vfx.swap.faces import FaceFinder
from dfl_vfx.swap.layout import LAYERS_COMPRESSION, layers_path


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
    t0 = time.perf_counter()
    image = read_image(Path(source), pixel_type="native")
    read_s = time.perf_counter() - t0
    if plans is None:
        assert finder is not None
        plans = plan_faces(engine, image, finder)
    result = engine.swap_image(image, plans, frame)
    result.times.read = read_s
    t = time.perf_counter()
    write_frame(target, result, compression)
    result.times.write = time.perf_counter() - t
    return FrameOutcome(frame, Path(target), result.faces, result.times)


def write_frame(target: str | Path, result: FrameResult, compression: str | None = None) -> None:
    """Write a swapped frame to ``target`` and its layers to ``layers/`` beside it (docs/dev/swap-output.md), at
    once; ``compression`` is the delivered frame's (None: the plate's, or ZIP when the plate's is lossy, so pixels
    outside the matte stay bit-identical), the layers get ``LAYERS_COMPRESSION``."""
    target = Path(target)
    files: list[tuple[Path, Image, str | None]] = []
    if result.layers is not None:  # renamed first: whoever finds the frame finds its layers too
        files.append((layers_path(target), result.layers, LAYERS_COMPRESSION))
    else:  # layers of an earlier run with other settings would pass for this frame's
        stale = layers_path(target)
        stale.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the folder goes once empty; other frames' layers or temps keep it
            stale.parent.rmdir()
    files.append((target, result.image, lossless_compression(result.image, compression) or None))
    write_images(files)
