"""`dfl-vfx extract PLATE --out FACESET`: detect, track, smooth and align faces of a plate into a faceset."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfl_vfx.errors import DflError
from dfl_vfx.extract.contact_sheet import contact_sheet
from dfl_vfx.extract.pipeline import ExtractOptions, default_jobs, extract
from dfl_vfx.face.detect import AUTO, backend_help
from dfl_vfx.faceset import Faceset
from dfl_vfx.io.outputs import check_output_dir

EPILOG = """\
examples:
  dfl-vfx extract shot/plate.####.exr --out shot/dst_faces --frames 1001-1100 --smooth 5
  dfl-vfx extract photos/ --out src_faces --colorspace "sRGB Encoded Rec.709 (sRGB)" --face-type f --size 256
  dfl-vfx extract plate.%04d.exr --out faces --select identity --reference actor.jpg

face types: h (half_face), mf (midfull_face), f (full_face), wf (whole_face), head
A rerun of the same command skips frames already extracted (--overwrite redoes them).

small faces: detection runs on a downscaled copy of each frame, and dlib's HOG detector finds faces of about
60-72 px or more in that copy. By default (--min-face auto, --detect-size auto) the smallest face looked for
is a tenth of the frame's shorter side, at least 40 px (108 px on 1920x1080, 121 px with 64 px of overscan,
99 px on a 2048x858 scope plate with overscan), and the copy is as small as still shows such a face (never
under 640 px). Smaller faces: give --min-face in plate pixels (e.g. --min-face 60; the copy grows, detection
slows). Faster: a larger --min-face, or --select largest (a half-size copy answers when it holds the face).
--detect-size N fixes the copy's longest side (640 was the old default: it missed faces under ~200 px on 2K
plates next to bigger ones). The summary's "detection:" line says what a run used.
"""


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def _pixels_or_auto(text: str) -> int:
    """A positive pixel count, or 'auto' (0)."""
    if text.strip().lower() == "auto":
        return AUTO
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or auto, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels or auto, got {text!r}")
    return value


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y in frame pixels, got {text!r}") from None
    return x, y


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    d = ExtractOptions()
    p = sub.add_parser(
        name,
        help="extract aligned faces from a plate sequence into a faceset",
        description="Extract aligned faces (DeepFaceLab alignment) from a plate into a faceset.\n\n" + backend_help(),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("plate", help="plate: name.####.exr, name.%%04d.exr, name.@@@@.exr, a folder or one image")
    p.add_argument("--out", required=True, type=Path, help="faceset folder to create or add to")
    p.add_argument("--frames", help="frame range, e.g. 1001-1100, 1001-1100x2, 1001,1005 (default: all on disk)")
    g = p.add_argument_group("alignment")
    g.add_argument("--face-type", default=d.face_type, help=f"h, mf, f, wf or head (default {d.face_type})")
    g.add_argument("--size", type=int, default=d.size, help=f"aligned face size in pixels (default {d.size})")
    g.add_argument("--smooth", type=int, default=d.smooth, metavar="N",
                   help="smooth landmarks over N frames to remove jitter (default 0 = off; 5-9 typical)")
    g.add_argument("--format", dest="encoding", choices=("exr", "png16"), default=d.encoding,
                   help="faces as half EXR or 16-bit PNG in the working space (default exr)")
    g = p.add_argument_group("detection")
    g.add_argument("--detector", default=d.detector, help=f"detector backend (default {d.detector})")
    g.add_argument("--detector-option", dest="detector_options", action="append", type=_key_value, default=[],
                   metavar="KEY=VALUE", help="backend option, repeatable (e.g. model=cnn, upsample=2)")
    g.add_argument("--min-face", type=_pixels_or_auto, default=d.min_face, metavar="PX|auto",
                   help="smallest face to find, in plate pixels; smaller ones are dropped (default auto: a tenth "
                        "of the frame's shorter side, at least 40)")
    g.add_argument("--detect-size", type=_pixels_or_auto, default=d.detect_size, metavar="PX|auto",
                   help="longest side of the downscaled copy detection runs on (default auto: as small as still "
                        "shows a --min-face face to the detector, never under 640)")
    g = p.add_argument_group("which faces")
    g.add_argument("--select", default=d.select, choices=("all", "largest", "nearest", "identity"),
                   help="keep all faces, the largest, the nearest to --point, or those matching --reference")
    g.add_argument("--max-faces", type=int, default=d.max_faces, help="at most this many faces per frame (0 = all)")
    g.add_argument("--point", type=_point, help="X,Y in plate pixels for --select nearest")
    g.add_argument("--reference", action="append", default=[], metavar="IMAGE",
                   help="photo of the person to keep, for --select identity (repeatable)")
    g.add_argument("--identity-threshold", type=float, default=d.identity_threshold,
                   help="max face-descriptor distance for --select identity (default 0.6)")
    g = p.add_argument_group("colour")
    g.add_argument("--colorspace", help="plate colourspace (default: the file's oiio:ColorSpace, else ACEScg)")
    g.add_argument("--ocio-config", help="OCIO config path or URI (default: $OCIO, else the built-in studio config)")
    g = p.add_argument_group("run")
    g.add_argument("--jobs", type=int, default=default_jobs(), help="worker processes (default: one per core)")
    g.add_argument("--debug", dest="debug_dir", help="write frames with landmarks and crop outlines to this folder")
    g.add_argument("--contact-sheet", help="contact sheet PNG (default: FACESET_contact_sheet.png beside it)")
    g.add_argument("--overwrite", action="store_true", help="redo frames already extracted")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress reports (a bar on a terminal, log lines otherwise)")
    p.set_defaults(run=run)


def options_from(args: argparse.Namespace) -> ExtractOptions:
    return ExtractOptions(
        face_type=args.face_type, size=args.size, detector=args.detector,
        detector_options=dict(args.detector_options), detect_size=args.detect_size, min_face=args.min_face,
        select=args.select, max_faces=args.max_faces, point=args.point, reference=list(args.reference),
        identity_threshold=args.identity_threshold, smooth=args.smooth, colorspace=args.colorspace,
        ocio_config=args.ocio_config, encoding=args.encoding, jobs=args.jobs, debug_dir=args.debug_dir,
        overwrite=args.overwrite, progress=args.progress,
    )


def run(args: argparse.Namespace) -> int:
    default_sheet = args.out.parent / f"{args.out.name}_contact_sheet.png"  # beside the faceset, not inside it
    sheet_path = Path(args.contact_sheet) if args.contact_sheet else default_sheet
    check_output_dir(args.out, "--out")
    check_output_dir(sheet_path.parent, "--contact-sheet")
    summary = extract(args.plate, str(args.out), options_from(args), frames=args.frames)
    for line in summary.lines():
        print(line)
    faceset = Faceset.open(args.out)
    if len(faceset):
        sheet = contact_sheet(faceset, sheet_path, ocio_config=args.ocio_config)
        print(f"contact sheet: {sheet}")
    if summary.faces_kept == 0:
        raise DflError(f"{args.plate}: {summary.nothing_extracted()}")
    return 0
