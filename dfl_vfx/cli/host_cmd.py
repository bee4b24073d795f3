"""`dfl-vfx host install nuke|blender --dest DIR` (install the Nuke plugin folder or the Blender add-on),
`dfl-vfx host script nuke OUT.nk --plate ... --model ...` (a Nuke script: plate -> DFLSwap -> Write; `make demo`
writes comp.nk) and `dfl-vfx host matrices FACESET ...` (DFLSwapNative's per-frame alignment as JSON)."""

from __future__ import annotations

import argparse
from pathlib import Path

INSTALL_EPILOG = """\
Copies the Nuke plugin (gizmos DFLSwap, DFLSwapNative, DFLMask and DFLExtract, init.py, menu.py, the dfl_nuke and
dfl_host packages) into DIR/dfl_vfx_nuke, records this dfl-vfx as the engine the nodes run, and prints the line to add
to the studio's init.py. Installing again updates the folder; a file there that an install did not write is never
overwritten. For Blender: the DFL Swap add-on in DIR/dfl_blender with the host client; enable it in Preferences >
Add-ons.

examples:
  dfl-vfx host install nuke --dest /studio/nuke/plugins
  dfl-vfx host install nuke --dest ~/.nuke --engine /opt/dfl_vfx/.venv/bin/dfl-vfx
  dfl-vfx host install blender --dest ~/.config/blender/4.2/extensions/user_default
"""

SCRIPT_EPILOG = """\
The --frames range must lie within the plate's frames on disk.

example:
  dfl-vfx host script nuke build/demo/comp.nk --plate build/demo/plate/plate.####.exr \\
      --model build/demo/model.onnx --frames 1001-1048
"""

MATRICES_EPILOG = """\
What DFLSwapNative's Bake alignment runs. With --plate, --frames must lie within the plate's frames on disk.

example:
  dfl-vfx host matrices shot/dst_faces --model shot/model.pt --plate shot/plate.####.exr --frames 1001-1048
"""

EPILOG = """\
actions: install (the Nuke plugin or the Blender add-on), script (a Nuke script: plate Read -> DFLSwap -> Write),
matrices (per-frame face matrices and Nuke corner pins as JSON); `dfl-vfx host ACTION --help` for each.

examples:
  dfl-vfx host install nuke --dest /studio/nuke/plugins
  dfl-vfx host script nuke build/demo/comp.nk --plate build/demo/plate/plate.####.exr --frames 1001-1048 \\
      --model build/demo/model.onnx
  dfl-vfx host matrices shot/dst_faces --model shot/model.pt --plate shot/plate.####.exr --frames 1001-1048
"""


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="install a host front end (the Nuke plugin, the Blender add-on)",
                       description="Install a host front end.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="host_action", metavar="ACTION", required=True)
    install = actions.add_parser("install", help="install a host's plugin folder", epilog=INSTALL_EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    install.add_argument("host", choices=["nuke", "blender"], help="the host application")
    install.add_argument("--dest", required=True, type=Path, help="folder to install into (made if missing)")
    install.add_argument("--engine", help="the dfl-vfx the nodes run (default: this one)")
    script = actions.add_parser("script", help="write a Nuke script: plate Read -> DFLSwap -> Write",
                                epilog=SCRIPT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    script.add_argument("host", choices=["nuke"], help="the host application")
    script.add_argument("out", type=Path, help="the script to write (.nk)")
    script.add_argument("--plate", required=True, help="the plate sequence (name.####.exr)")
    script.add_argument("--model", required=True, help="the trained model (folder, .onnx or .dfm)")
    script.add_argument("--frames", required=True, help="frame range FIRST-LAST, e.g. 1001-1048")
    script.add_argument("--cache", help="the node's cache folder (default: nuke_cache beside the script)")
    script.add_argument("--render", help="the Write's file (default: comp/comp.####.exr beside the script)")
    matrices = actions.add_parser("matrices", help="print a faceset's per-frame face alignment for Nuke (JSON)",
                                  description="Per frame, the engine's plate -> aligned-face matrix and the four "
                                  "corner pins DFLSwapNative animates, in Nuke's coordinates (docs/nuke.md).",
                                  epilog=MATRICES_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    matrices.add_argument("faceset", help="the plate's faceset (from dfl-vfx extract)")
    matrices.add_argument("--model", required=True, help="the exported model (.pt or .onnx): resolution, face type")
    window = matrices.add_mutually_exclusive_group(required=True)
    window.add_argument("--plate", help="the plate sequence (its display window is Nuke's format)")
    window.add_argument("--format", help="Nuke's format as WIDTHxHEIGHT when the plate is not on disk")
    matrices.add_argument("--frames", help="frames, e.g. 1001-1048 (default: every tracked frame)")
    matrices.add_argument("--track", type=int, help="the face track to follow (default: the largest face)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.host_action == "script":
        return write_script(args)
    if args.host_action == "matrices":
        return print_matrices(args)
    from dfl_vfx.hosts.install import init_line, install_blender, install_nuke

    if args.host == "blender":
        target = install_blender(args.dest.expanduser(), args.engine)
        print(f"installed the Blender add-on in {target} (its Engine preference: this dfl-vfx)")
        print("in an extensions folder (.../extensions/user_default) or scripts/addons, enable DFL Swap in "
              "Preferences > Add-ons")
        return 0
    target = install_nuke(args.dest.expanduser(), args.engine)
    print(f"installed the Nuke plugin in {target}")
    print("add this line to your studio's init.py (or put the folder on NUKE_PATH):")
    print(f"  {init_line(target)}")
    return 0


def write_script(args: argparse.Namespace) -> int:
    import re

    from dfl_vfx.errors import DflError
    from dfl_vfx.hosts.nuke_script import write_comp_script
    from dfl_vfx.io.outputs import check_output_dir
    from dfl_vfx.io.sequence import open_sequence

    match = re.fullmatch(r"\s*(-?\d+)\s*-\s*(-?\d+)\s*", args.frames)
    if match is None or int(match.group(1)) > int(match.group(2)):
        raise DflError(f"--frames {args.frames}: give FIRST-LAST, e.g. 1001-1048")
    open_sequence(args.plate, args.frames)  # a plate with no frames, or frames outside it, is refused
    out = args.out.expanduser().resolve()
    folder = check_output_dir(out.parent, "OUT", create=True)
    written = write_comp_script(out, str(Path(args.plate).expanduser().resolve()),
                                str(Path(args.model).expanduser().resolve()),
                                args.cache or str(folder / "nuke_cache"),
                                args.render or str(folder / "comp" / "comp.####.exr"),
                                int(match.group(1)), int(match.group(2)))
    print(f"wrote {written} (open it in Nuke with the plugin installed: dfl-vfx host install nuke)")
    return 0


def print_matrices(args: argparse.Namespace) -> int:
    import json
    import re

    from dfl_vfx.errors import DflError
    from dfl_vfx.hosts.nuke_native_gizmo import Display, alignment, model_face, plate_display
    from dfl_vfx.io.sequence import open_sequence, parse_frames

    if args.plate:
        if args.frames:
            open_sequence(args.plate, args.frames)  # frames outside the plate are refused
        display = plate_display(args.plate)
    else:
        match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", args.format)
        if match is None:
            raise DflError(f"--format {args.format}: give WIDTHxHEIGHT, e.g. 1920x1080")
        display = Display(0, 0, int(match.group(1)), int(match.group(2)))
    resolution, face_type = model_face(args.model)
    frames = parse_frames(args.frames) if args.frames else None
    print(json.dumps(alignment(args.faceset, resolution, face_type, display, frames, args.track)))
    return 0
