"""Before/after sheets of a swap: per frame, the plate and the swapped frame side by side, plus face close-ups."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dfl_vfx.color.ocio import WorkingSpace, plate_colorspace
from dfl_vfx.errors import DflError
from dfl_vfx.extract.contact_sheet import _label
from dfl_vfx.io.image import Image, read_image, write_image
from dfl_vfx.io.sequence import FrameSequence
from dfl_vfx.swap.header import read_face_records


def _display(image: Image, space: WorkingSpace) -> np.ndarray:
    rgb = image.pixels[..., [image.channels.index(c) for c in "RGB"]].astype(np.float32)
    return space.display_uint8(rgb)


def _face_box(image: Image, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    faces = read_face_records(image.metadata, image.path)
    if not faces:
        return None
    x0, y0, x1, y1 = faces[0].bbox
    ox, oy = image.data_window.x, image.data_window.y
    h, w = shape
    return max(0, x0 - ox), max(0, y0 - oy), min(w, x1 - ox), min(h, y1 - oy)


def before_after_sheet(plate: FrameSequence, swapped: FrameSequence, frames: list[int], target: str | Path,
                       width: int = 480, ocio_config: str | None = None) -> Path:
    """A PNG with one row per frame: plate, swap, plate face close-up, swapped face close-up."""
    rows = []
    for frame in frames:
        path = swapped.path(frame)
        if not path.is_file():
            continue
        before = read_image(plate.path(frame), channels=["R", "G", "B"])
        after = read_image(path, channels=["R", "G", "B"])
        space = WorkingSpace(plate_colorspace(None, before.metadata))
        a, b = _display(before, space), _display(after, space)
        height = round(a.shape[0] * width / a.shape[1])
        tiles = [cv2.resize(x, (width, height), interpolation=cv2.INTER_AREA) for x in (a, b)]
        box = _face_box(after, a.shape[:2])
        for x in (a, b):
            if box is None:
                tiles.append(np.zeros((height, height, 3), np.uint8))
                continue
            x0, y0, x1, y1 = box
            tiles.append(cv2.resize(x[y0:y1, x0:x1], (height, height), interpolation=cv2.INTER_AREA))
        for tile, text in zip(tiles, (f"plate {frame}", f"swap {frame}", "plate face", "swapped face"), strict=True):
            _label(tile, text)
        rows.append(np.concatenate(tiles, axis=1))
    if not rows:
        raise DflError(f"{swapped.pattern}: no swapped frames to show; run dfl-vfx swap first")
    sheet = np.concatenate(rows, axis=0)
    target = Path(target)
    write_image(target, Image.from_array(sheet / 255.0, fmt="uint8"))
    return target
