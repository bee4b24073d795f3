"""`dfl-vfx xseg edit` (the web label editor) and `dfl-vfx xseg import-mattes` (compositors' mattes as labels).

Verbs of `dfl-vfx xseg`, registered in :data:`dfl_vfx.cli.xseg_cmd.VERBS` by the functions here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EDIT_EPILOG = """\
keys: Q include, W exclude, click to add points (click the first point or Enter to close), Esc drop, Backspace
remove the last point, Delete remove the polygon under the pointer, drag a point to move it, Ctrl+Z / Ctrl+Shift+Z
undo / redo, A D or arrows previous / next face (saves), S save, ` or O prediction overlay.

The page is served on 127.0.0.1 only, under a random token in its URL (printed at start); it loads nothing from
the internet. Labels are saved into each face's metadata (seg_ie_polys, as DeepFaceLab); pixels are never written.

examples:
  dfl-vfx xseg edit shot/dst_faces                    # prints http://127.0.0.1:PORT/TOKEN/
  dfl-vfx xseg edit shot/dst_faces --model shot/xseg --port 8765 --open
"""

IMPORT_EPILOG = """\
Mattes are renders at the plate's format, one per frame (Nuke: a Write of the roto's alpha; Blender: a
compositor File Output), EXR with overscan or PNG. Each face gets its frame's matte warped into it, stored as
FACESET/xseg_labels/<face>.png; faces with polygons keep using their polygons.

examples:
  dfl-vfx xseg import-mattes shot/dst_faces roto/sh010_roto.####.exr
  dfl-vfx xseg import-mattes shot/dst_faces roto/sh010_roto.%04d.png --frames 1001-1050 --channel Y
"""


def add_edit(verbs: argparse._SubParsersAction, name: str) -> None:
    p = verbs.add_parser(name, help="label faces in a local web page (include/exclude polygons)",
                         description="Serve the XSeg label editor for a faceset on 127.0.0.1 and print its URL.",
                         epilog=EDIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("faceset", type=Path)
    p.add_argument("--model", type=Path, help="XSeg model folder whose prediction the page overlays (default: the "
                                              "masks of `dfl-vfx xseg apply`, FACESET/xseg/, when present)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: any free port)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(run=run_edit)


def run_edit(args: argparse.Namespace) -> int:
    import webbrowser

    from dfl_vfx.xseg.editor.server import open_editor
    from dfl_vfx.xseg.labels import label_summary

    server = open_editor(args.faceset, model=args.model, port=args.port)
    counts = label_summary(server.session.faceset)
    print(f"XSeg label editor for {args.faceset} ({counts['faces']} faces, {counts['polygons']} with polygons, "
          f"{counts['mattes']} with mattes): open {server.url}  (Ctrl-C stops)", flush=True)
    if args.open:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("editor stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def add_import_mattes(verbs: argparse._SubParsersAction, name: str) -> None:
    p = verbs.add_parser(name, help="import compositors' roto mattes (EXR/PNG per frame) as face labels",
                         description="Warp per-frame mattes into the aligned faces and store them as labels.",
                         epilog=IMPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("faceset", type=Path)
    p.add_argument("mattes", help="matte sequence: roto.####.exr, roto.%%04d.png, roto.@@@@.exr")
    p.add_argument("--frames", help="frames to import, e.g. 1001-1050 (default: every face's frame)")
    p.add_argument("--channel", default="A", help="channel holding the matte (default A; a one-channel file uses "
                                                  "its channel)")
    p.set_defaults(run=run_import_mattes)


def run_import_mattes(args: argparse.Namespace) -> int:
    from dfl_vfx.faceset.faceset import Faceset
    from dfl_vfx.io.sequence import format_frames
    from dfl_vfx.xseg.mattes import import_mattes

    report = import_mattes(Faceset.open(args.faceset), args.mattes, frames=args.frames, channel=args.channel)
    print(f"{len(report.written)} face labels written to {args.faceset / 'xseg_labels'} from frames "
          f"{format_frames(report.frames)}")
    for face, reason in sorted(report.skipped.items()):
        print(f"skipped {face}: {reason}")
    return 0
