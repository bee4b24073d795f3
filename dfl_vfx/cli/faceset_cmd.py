"""`dfl-vfx faceset info|sort|import-dfl|contact-sheet`: inspect and curate facesets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dfl_vfx.extract.contact_sheet import contact_sheet
from dfl_vfx.faceset import SORT_KEYS, Faceset, import_dfl_faceset, sort_faceset

SORT_HELP = {
    "blur": "sharpest first (variance of the Laplacian inside the face)",
    "yaw": "head turn, left to right",
    "pitch": "head tilt, down to up",
    "hist": "chain of most similar colour histograms (groups similar lighting)",
    "brightness": "brightest first",
    "hue": "by mean hue of the face",
    "face": "identity: chain of most similar faces, or nearest to --reference first",
}


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="inspect, sort and import facesets",
                       description="Inspect, sort and import facesets (aligned faces with JSON metadata).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    info = verbs.add_parser("info", help="print what a faceset holds")
    info.add_argument("faceset", type=Path)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=run_info)

    keys = "\n".join(f"  {k:<11}{SORT_HELP.get(k, '')}" for k in SORT_KEYS)
    sort = verbs.add_parser(
        "sort", help="rank faces and rename them NNNNN_<name> in that order",
        description=f"Rank the faces and rename them NNNNN_<original name>. Keys:\n{keys}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sort.add_argument("faceset", type=Path)
    sort.add_argument("--by", required=True, choices=list(SORT_KEYS), metavar="KEY", help="sort key (see above)")
    sort.add_argument("--reference", type=Path, help="a photo of the person, for --by face")
    sort.add_argument("--dry-run", action="store_true", help="print the order without renaming")
    sort.set_defaults(run=run_sort)

    imp = verbs.add_parser(
        "import-dfl", help="convert a DeepFaceLab aligned folder (JPEGs with metadata) into a faceset",
        description="Convert DeepFaceLab aligned JPEGs into a faceset. Their pickled metadata is read with a "
                    "restricted loader that accepts plain data only and refuses anything else.",
    )
    imp.add_argument("src", type=Path, help="DeepFaceLab aligned folder")
    imp.add_argument("--out", required=True, type=Path, help="faceset folder to create")
    imp.add_argument("--size", type=int, help="resize faces to this size (default: keep)")
    imp.set_defaults(run=run_import)

    sheet = verbs.add_parser("contact-sheet", help="write a PNG grid of the faces with landmarks")
    sheet.add_argument("faceset", type=Path)
    sheet.add_argument("--out", type=Path, help="PNG path (default: FACESET_contact_sheet.png beside it)")
    sheet.add_argument("--max-faces", type=int, default=64, help="faces shown, evenly sampled (default 64)")
    sheet.add_argument("--no-landmarks", dest="landmarks", action="store_false", help="faces only")
    sheet.set_defaults(run=run_sheet)


def run_info(args: argparse.Namespace) -> int:
    faceset = Faceset.open(args.faceset)
    summary = faceset.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{faceset.root}: {summary['count']} face(s), {summary['face_type']} {summary['size']}px, "
          f"{faceset.info.encoding} in {faceset.info.colorspace}")
    for key in ("source_frames", "yaw_degrees", "pitch_degrees"):
        span = summary[key]
        if span:
            lo, hi = span
            print(f"  {key.replace('_', ' ')}: {lo:.4g} .. {hi:.4g}")
    print(f"  detectors: {', '.join(f'{k} ({v})' for k, v in summary['detectors'].items()) or 'none'}")
    print(f"  source files: {len(summary['per_source'])}")
    return 0


def run_sort(args: argparse.Namespace) -> int:
    rows = sort_faceset(Faceset.open(args.faceset), args.by, reference=args.reference, dry_run=args.dry_run)
    for old, new, key in rows:
        print(f"{key:12.5g}  {old} -> {new}")
    print(f"{'would rename' if args.dry_run else 'renamed'} {sum(o != n for o, n, _ in rows)} of {len(rows)} faces")
    return 0


def run_import(args: argparse.Namespace) -> int:
    report = import_dfl_faceset(args.src, args.out, size=args.size)
    for name, reason in report.skipped:
        print(f"  skipped {name}: {reason}")
    print(f"imported {len(report.imported)} face(s) into {report.faceset}, skipped {len(report.skipped)}")
    return 0 if report.imported else 2


def run_sheet(args: argparse.Namespace) -> int:
    faceset = Faceset.open(args.faceset)
    default = faceset.root.parent / f"{faceset.root.name}_contact_sheet.png"
    path = contact_sheet(faceset, args.out or default, max_faces=args.max_faces,
                         landmarks=args.landmarks)
    print(f"contact sheet: {path}")
    return 0
