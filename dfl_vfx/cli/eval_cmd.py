"""`dfl-vfx eval SWAPPED --src-faceset SRC`: measure a swap with the DFL paper's metrics and print (or save) them."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
examples:
  dfl-vfx eval shot/swap --src-faceset shot/src_faces
  dfl-vfx eval shot/swap/plate.####.exr --src-faceset shot/src_faces --model shot/model --plate shot/plate \\
      --frames 1001-1048 --json shot/eval.json

metrics (↑ higher is better, ↓ lower is better, as in the DFL paper's tables):
  SSIM src / dst ↑   the model's reconstruction of its src faces (and, with --plate, of the plate's dst faces)
                     compared with its input under the face hull, in the working space as training sees them
  identity swap->src ↓  dlib 128-d descriptor distance of each swapped face to the mean src face; below 0.6
                     dlib calls two faces the same person
  identity dst->src  the same distance for the original plate faces (needs --plate): the swap starts from here
  landmarks ↓        faces are found again on the swapped frames; mean 68-point offset from the dst landmarks in
                     pixels of a 256 px aligned face (the expression should be kept)
  pose ↓             mean |pitch, yaw, roll| difference from the dst face in degrees (the head pose should be kept)
  Frames where no face is found again are listed as missed (identity then uses the header's landmarks).

for context only, the DFL paper's ablation (arXiv 2005.05535, Table 2, FaceForensics++ swaps); its data,
verification model and landmark/pose scales differ from these, so compare trends between your runs, not values:
  DF    SSIM 0.73  verification 0.61  landmarks 0.73  pose 1.12
  LIAE  SSIM 0.76  verification 0.58  landmarks 0.66  pose 0.91
"""


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="measure a swap: SSIM, identity, landmark and pose error",
                       description="Evaluate `dfl-vfx swap` output frames against the src faceset, the model and "
                                   "the original plate.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("swapped", help="swap output folder or its frame pattern (name.####.exr)")
    p.add_argument("--src-faceset", required=True, type=Path, help="the src faceset the model was trained on")
    p.add_argument("--model", type=Path, help="model folder the swap used (adds reconstruction SSIM)")
    p.add_argument("--plate", help="the original dst plate (adds the identity baseline and dst SSIM)")
    p.add_argument("--frames", help="frame range, e.g. 1001-1100, 1001-1100x2 (default: all on disk)")
    p.add_argument("--max-faces", type=int, default=200,
                   help="measure at most this many swapped faces and src faces, spread evenly (default 200)")
    p.add_argument("--colorspace", help="plate colourspace when the files' oiio:ColorSpace tag is missing or wrong")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="also write the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from dfl_vfx import api
    from dfl_vfx.io.atomic import write_text_atomic

    report = api.evaluate(args.swapped, args.src_faceset, model=args.model, plate=args.plate, frames=args.frames,
                          max_faces=args.max_faces, colorspace=args.colorspace,
                          progress=False if args.no_progress else None)
    print("\n".join(report.lines()))
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
