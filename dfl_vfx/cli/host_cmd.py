"""`dfl-vfx host install nuke --dest DIR`: install a host front end (the Nuke plugin folder) for a studio."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
Copies the Nuke plugin (gizmos DFLSwap and DFLMask, init.py, menu.py, the dfl_nuke and dfl_host packages) into
DIR/dfl_vfx_nuke, records this dfl-vfx as the engine the nodes run, and prints the line to add to the studio's
init.py. Installing again updates the folder; a file there that an install did not write is never overwritten.

examples:
  dfl-vfx host install nuke --dest /studio/nuke/plugins
  dfl-vfx host install nuke --dest ~/.nuke --engine /opt/dfl_vfx/.venv/bin/dfl-vfx
"""


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="install a host front end (the Nuke plugin)",
                       description="Install a host front end.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="host_action", metavar="ACTION", required=True)
    install = actions.add_parser("install", help="install a host's plugin folder", epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    install.add_argument("host", choices=["nuke"], help="the host application")
    install.add_argument("--dest", required=True, type=Path, help="folder to install into (made if missing)")
    install.add_argument("--engine", help="the dfl-vfx the nodes run (default: this one)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dfl_vfx.hosts.install import init_line, install_nuke

    target = install_nuke(args.dest.expanduser(), args.engine)
    print(f"installed the Nuke plugin in {target}")
    print("add this line to your studio's init.py (or put the folder on NUKE_PATH):")
    print(f"  {init_line(target)}")
    return 0
