"""Contact sheets: a grid of a faceset's aligned faces (display-referred) with landmarks and frame labels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dfl_vfx.color.ocio import SRGB_SPACE, ColorTransform, load_config
from dfl_vfx.errors import DflError
from dfl_vfx.face.draw import draw_landmarks
from dfl_vfx.faceset import Faceset
from dfl_vfx.io.image import Image, write_image


def _label(tile: np.ndarray, text: str) -> None:
    cv2.rectangle(tile, (0, tile.shape[0] - 18), (tile.shape[1], tile.shape[0]), (0, 0, 0), -1)
    cv2.putText(tile, text, (4, tile.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)


def contact_sheet(
    faceset: Faceset, target: str | Path, thumb: int = 160, columns: int = 8, max_faces: int = 64,
    landmarks: bool = True, ocio_config: str | None = None,
) -> Path:
    """Write a PNG grid of up to ``max_faces`` faces (evenly sampled) and return its path."""
    records = faceset.records()
    if not records:
        raise DflError(f"{faceset.root}: the faceset holds no faces; nothing to show")
    picks = np.unique(np.linspace(0, len(records) - 1, min(max_faces, len(records))).round().astype(int))
    to_display = ColorTransform(faceset.info.colorspace, SRGB_SPACE, load_config(ocio_config))
    tiles = []
    for index in picks:
        record = records[int(index)]
        face = faceset.read(record)
        shown = (np.clip(to_display(face), 0, 1) * 255 + 0.5).astype(np.uint8)
        scale = thumb / shown.shape[0]
        shown = cv2.resize(shown, (thumb, thumb), interpolation=cv2.INTER_AREA)
        if landmarks:
            shown = draw_landmarks(shown, record.meta.landmarks_array() * scale, radius=1)
        frame = record.meta.source_frame
        _label(shown, f"{frame if frame is not None else record.path.stem} #{record.meta.face_index}")
        tiles.append(shown)
    rows = -(-len(tiles) // columns)
    sheet = np.zeros((rows * thumb, min(columns, len(tiles)) * thumb, 3), np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * thumb : (r + 1) * thumb, c * thumb : (c + 1) * thumb] = tile
    target = Path(target)
    write_image(target, Image.from_array(sheet / 255.0, fmt="uint8"))
    return target
