"""`make demo`'s last picture: the Blender compositor's render of two demo frames beside the engine's own swap
(``DEMO/blender/blender_vs_engine.png``), with how far apart they are.

Runs in the engine's environment (it reads EXRs with OpenImageIO and shows them through the engine's OCIO
display transform): ``.venv/bin/python blender_addon/demo_sheet.py --demo build/demo``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from dfl_vfx.color.ocio import WorkingSpace, plate_colorspace
from dfl_vfx.errors import DflError
from dfl_vfx.extract.contact_sheet import _label
from dfl_vfx.io.image import Image, read_image, write_image
from dfl_vfx.swap.header import read_face_records

TILE_WIDTH = 560


def compare(demo: Path, frames: list[int]) -> Path:
    rows = []
    for frame in frames:
        plate = read_image(demo / "plate" / f"plate.{frame}.exr", channels=["R", "G", "B"])
        engine = read_image(demo / "swap" / f"plate.{frame}.exr", channels=["R", "G", "B"])
        blender = read_image(demo / "blender" / f"render.{frame}.exr", channels=["R", "G", "B"])
        a, b, p = (image.pixels.astype(np.float32) for image in (engine, blender, plate))
        x0, y0, x1, y1 = read_face_records(engine.metadata, engine.path)[0].bbox
        ox, oy = engine.data_window.x, engine.data_window.y
        face = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
        outside = np.ones(a.shape[:2], bool)
        outside[face] = False
        print(f"frame {frame}: Blender vs engine in the face box: mean {np.abs(b - a)[face].mean():.2e}, "
              f"max {np.abs(b - a)[face].max():.2e} (the swap itself changes it by {np.abs(a - p)[face].mean():.3f});"
              f" outside it Blender vs plate: max {np.abs(b - p)[outside].max():.1e}")
        space = WorkingSpace(plate_colorspace(None, plate.metadata))
        shown = [space.display_uint8(x) for x in (a, b)]
        height = round(a.shape[0] * TILE_WIDTH / a.shape[1])
        tiles = [cv2.resize(x, (TILE_WIDTH, height), interpolation=cv2.INTER_AREA) for x in shown]
        tiles += [cv2.resize(x[face], (height, height), interpolation=cv2.INTER_AREA) for x in shown]
        for tile, text in zip(tiles, (f"engine {frame}", f"Blender {frame}", "engine face", "Blender face"),
                              strict=True):
            _label(tile, text)
        rows.append(np.concatenate(tiles, axis=1))
    target = demo / "blender" / "blender_vs_engine.png"
    write_image(target, Image.from_array(np.concatenate(rows, axis=0) / 255.0, fmt="uint8"))
    print(f"Blender beside the engine: {target}")
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=Path("build/demo"), help="the demo folder (make demo's)")
    parser.add_argument("--frames", default="1001,1024", help="the frames render_demo.py rendered")
    args = parser.parse_args()
    try:
        compare(args.demo, [int(f) for f in args.frames.split(",")])
    except DflError as exc:
        print(f"demo_sheet: {exc} (render_demo.py renders the Blender frames)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
