"""`dfl-vfx swap PLATE --model MODEL --out OUT`: render swapped frames (EXR: RGBA + mask/face/raw layers)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfl_vfx.merge.merger import DEFAULT_LAYERS, LAYERS, MergeSettings

EPILOG = """\
examples:
  dfl-vfx swap plate/shot.####.exr --model shot/model.onnx --faceset shot/dst_faces --out shot/swap
  dfl-vfx swap plate/shot.####.exr --model shot/model --frames 1001-1050 --out shot/swap   # farm chunk
  dfl-vfx swap plate/shot.####.exr --model face.dfm --face-type wf --out shot/swap --erode 20 --blur 60

faces: with --faceset (the destination faceset from `dfl-vfx extract`, ideally with --smooth) the swap uses its
temporally smoothed landmarks; without it, faces are detected on each frame.

output: one EXR per frame, named like the plate, keeping its data/display windows, other channels and metadata:
  R,G,B,A      the plate with the face composited in scene-linear (premultiplied; values above 1 survive)
  mask.A       final matte                       (--layers mask)
  face.RGBA    the swapped face alone, premultiplied by the matte (--layers face)
  raw.RGBA     the network output warped to the plate, no matte   (--layers raw)
Pixels outside the matte are bit-identical to the plate. The header holds each face's landmarks and matrix
(dfl_vfx:faces) and the settings (dfl_vfx:swap). Reruns skip frames already written with the same settings.
A PNG or TIFF plate gives frames of its own format, which hold R,G,B,A only: pass --layers rgba.

summary: OUT/swap_summary.json, or OUT/swap_summary.1001-1050.json for a --frames chunk (chunks sharing a folder
keep their own), rewritten as frames finish; "status" says running, interrupted or complete.

mask modes: full, hull, learned-prd, learned-dst, combined with * and + (DeepFaceLab's 0..5 also accepted).
erode/blur use DeepFaceLab's units (pixels of the face at 4x the model resolution), so they look the same at
any plate resolution.
"""


def _layers(text: str) -> tuple[str, ...]:
    layers = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [layer for layer in layers if layer not in LAYERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown layer {unknown[0]!r}; choose from {','.join(LAYERS)}")
    return ("rgba",) + tuple(layer for layer in layers if layer != "rgba")


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    d = MergeSettings()
    p = sub.add_parser(name, help="swap faces in a plate sequence with a trained model",
                       description="Swap faces in a scene-linear plate sequence and write EXR frames with layers.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plate", help="plate: name.####.exr, name.%%04d.exr, a folder or one image")
    p.add_argument("--model", required=True, help="exported .onnx, a DeepFaceLab/DeepFaceLive .dfm, or a model folder")
    p.add_argument("--out", required=True, type=Path, help="output folder (frames keep the plate's names)")
    p.add_argument("--frames", help="frame range, e.g. 1001-1100 or 1001-1100x2 (default: all on disk)")
    p.add_argument("--faceset", help="destination faceset from `dfl-vfx extract` (default: detect on each frame)")
    g = p.add_argument_group("merge")
    g.add_argument("--color-transfer", default=d.color_transfer,
                   help=f"none, rct, lct, mkl, mkl-m, idt, idt-m, sot-m, mix-m (default {d.color_transfer})")
    g.add_argument("--mask-mode", default=d.mask_mode, help=f"mask expression (default {d.mask_mode})")
    g.add_argument("--erode", type=float, default=d.erode, help="-400..400: shrink (>0) or grow (<0) the mask")
    g.add_argument("--blur", type=float, default=d.blur, help=f"0..400: soften the mask edge (default {d.blur:g})")
    g.add_argument("--face-scale", type=float, default=d.face_scale, help="-50..50 percent: scale the pasted face")
    g.add_argument("--interpolation", default=d.interpolation, choices=("bilinear", "bicubic", "lanczos"),
                   help=f"warp filter back into the plate (default {d.interpolation})")
    g.add_argument("--sharpen-mode", default=d.sharpen_mode, choices=("none", "box", "gaussian"))
    g.add_argument("--sharpen-amount", type=float, default=d.sharpen_amount,
                   help="-100..100: sharpen (>0) or blur (<0) the face")
    g.add_argument("--motion-blur", type=float, default=d.motion_blur,
                   help="0..100: blur the face along its landmark motion (needs --faceset; one face per frame)")
    g = p.add_argument_group("model")
    g.add_argument("--backend", default="auto", help="auto, onnxruntime, tensorrt or torch (default auto)")
    g.add_argument("--device", default="auto", help="auto, cpu or cuda:N (default auto)")
    g.add_argument("--batch", type=int, default=8, help="faces per inference call (halved on GPU out-of-memory)")
    g.add_argument("--face-type", help="face type of a model that does not say (external .dfm): f, wf or head")
    g.add_argument("--merge-backend", default="auto", choices=("auto", "native", "reference", "cuda"),
                   help="where the warp/matte/composite run: auto = CUDA beside a GPU model, else the C++ core")
    g = p.add_argument_group("output")
    g.add_argument("--layers", type=_layers, default=DEFAULT_LAYERS,
                   help=f"comma list of {','.join(LAYERS)} (default {','.join(DEFAULT_LAYERS)})")
    g.add_argument("--compression", help="EXR compression (default: the plate's), e.g. zip, piz, dwaa")
    g.add_argument("--colorspace", help="plate colourspace (default: the file's oiio:ColorSpace, else ACEScg)")
    g.add_argument("--ocio-config", help="OCIO config path or URI (default: $OCIO, else the built-in studio config)")
    g = p.add_argument_group("run")
    g.add_argument("--jobs", type=int, default=2, help="frames in flight (default 2)")
    g.add_argument("--overwrite", action="store_true", help="redo frames already written with the same settings")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")
    p.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace) -> object:
    from dfl_vfx.swap.engine import SwapSettings

    merge = MergeSettings(mask_mode=args.mask_mode, erode=args.erode, blur=args.blur,
                          color_transfer=args.color_transfer, face_scale=args.face_scale,
                          interpolation=args.interpolation, sharpen_mode=args.sharpen_mode,
                          sharpen_amount=args.sharpen_amount, motion_blur=args.motion_blur)
    return SwapSettings(model=args.model, merge=merge, layers=tuple(args.layers), backend=args.backend,
                        device=args.device, batch=args.batch, face_type=args.face_type, colorspace=args.colorspace,
                        ocio_config=args.ocio_config, merge_backend=args.merge_backend)


def run(args: argparse.Namespace) -> int:
    from dfl_vfx.swap.pipeline import swap_shot

    settings = settings_from_args(args)
    summary = swap_shot(args.plate, str(args.out), settings, frames=args.frames, faceset=args.faceset,
                        jobs=args.jobs, overwrite=args.overwrite, compression=args.compression,
                        progress=args.progress)
    for line in summary.lines():
        print(line)
    return 1 if summary.failed else 0
