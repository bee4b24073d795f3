"""`dfl-vfx swap PLATE --model MODEL --out OUT`: render swapped frames (EXR) and their layers (OUT/layers/)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from dfl_vfx.schema import SWAP_SETTINGS, add_cli_arguments

if TYPE_CHECKING:
    from dfl_vfx.swap.engine import SwapSettings

EPILOG = """\
examples:
  dfl-vfx swap plate/shot.####.exr --model shot/model.onnx --faceset shot/dst_faces --out shot/swap
  dfl-vfx swap plate/shot.####.exr --model shot/model --frames 1001-1050 --out shot/swap   # farm chunk
  dfl-vfx swap plate/shot.####.exr --model face.dfm --face-type wf --out shot/swap --erode 20 --blur 60

faces: with --faceset (the destination faceset from `dfl-vfx extract`, ideally with --smooth) the swap uses its
temporally smoothed landmarks; without it, faces are detected on each frame.

output: per frame OUT/NAME.FRAME.exr, the delivered frame: the plate with R,G,B,A swapped in scene-linear
(premultiplied; values above 1 survive), keeping its data/display windows, other channels, metadata and
compression; a lossy plate (dwaa, dwab, b44, b44a, pxr24 on float channels) is delivered with zip so pixels outside
the matte stay bit-identical (said once in the log and the summary; --compression dwaa keeps the plate's codec and
DWA level). Layers beyond rgba go to OUT/layers/NAME.FRAME.exr, cut to the faces' boxes (--layer-window face,
for Nuke) or the display window (--layer-window display, for Blender, which ignores data windows):
  mask.A       final matte                       (--layers mask)
  face.RGBA    the swapped face alone, premultiplied by the matte (--layers face)
  raw.RGBA     the network output warped to the plate, no matte   (--layers raw)
  matte.A      the matte before erode, blur and opacity, for hosts that tune those live (--layers matte)
Pixels outside the matte are bit-identical to the plate. The headers hold each face's landmarks and matrix
(dfl_vfx:faces) and the settings (dfl_vfx:swap). Reruns skip frames already written with the same settings.
A PNG or TIFF plate gives frames of its own format, which hold R,G,B,A only: pass --layers rgba.

summary: OUT/swap_summary.json, or OUT/swap_summary.1001-1050.json for a --frames chunk (chunks sharing a folder
keep their own), rewritten as frames finish; "status" says running, interrupted or complete.

{mask_modes}
live settings (erode, blur, opacity, face-exposure) can be redone by a host from the matte and raw layers
without the network; see `dfl-vfx schema` and docs/dev/swap-output.md.
erode/blur use DeepFaceLab's units (pixels of the face at 4x the model resolution), so they look the same at
any plate resolution.
"""


def mask_modes_help() -> str:
    """The epilog's mask-mode lines, from the names and DeepFaceLab numbers the merge accepts."""
    from dfl_vfx.merge.masks import DFL_MASK_MODES, MASK_NAMES, XSEG_NAMES

    numbers = sorted(DFL_MASK_MODES, key=int)
    text = (f"mask modes: {', '.join(MASK_NAMES)}, combined with * and + ({' and '.join(XSEG_NAMES)} need "
            f"--xseg-model). DeepFaceLab's {numbers[0]}..{numbers[-1]} are also accepted: "
            + ", ".join(f"{n}={DFL_MASK_MODES[n]}" for n in numbers) + ".")
    return textwrap.fill(text, width=116, subsequent_indent="  ", break_on_hyphens=False)


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="swap faces in a plate sequence with a trained model",
                       description="Swap faces in a scene-linear plate sequence and write EXR frames with layers.",
                       epilog=EPILOG.format(mask_modes=mask_modes_help()),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plate", help="plate: name.####.exr, name.%%04d.exr, a folder or one image")
    p.add_argument("--model", required=True, help="exported .onnx, a DeepFaceLab/DeepFaceLive .dfm, or a model folder")
    p.add_argument("--out", required=True, type=Path, help="output folder (frames keep the plate's names)")
    p.add_argument("--frames", help="frame range, e.g. 1001-1100 or 1001-1100x2 (default: all on disk)")
    p.add_argument("--faceset", help="destination faceset from `dfl-vfx extract` (default: detect on each frame)")
    for group in ("merge", "model", "output"):
        add_cli_arguments(p.add_argument_group(group), group)
    g = p._action_groups[-1]
    g.add_argument("--compression", help="EXR compression of the delivered frames (default: the plate's, zip when it "
                   "is lossy), e.g. zip, piz, dwaa (keeps a dwaa plate's level), dwaa:45")
    add_cli_arguments(p.add_argument_group("colour"), "colour")
    g = p.add_argument_group("run")
    g.add_argument("--jobs", type=int, default=2, help="frames in flight (default 2)")
    g.add_argument("--overwrite", action="store_true", help="redo frames already written with the same settings")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")
    p.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace) -> SwapSettings:
    """The swap settings the options give; the schema checks every value (its errors name the option)."""
    from dfl_vfx import api

    return api.swap_settings(args.model, {name: getattr(args, name) for name in SWAP_SETTINGS})


def run(args: argparse.Namespace) -> int:
    from dfl_vfx import api

    settings = settings_from_args(args)
    summary = api.swap_shot(args.plate, str(args.out), settings, frames=args.frames, faceset=args.faceset,
                        jobs=args.jobs, overwrite=args.overwrite, compression=args.compression,
                        progress=args.progress)
    for line in summary.lines():
        print(line)
    return 1 if summary.failed else 0
