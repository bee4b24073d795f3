"""`dfl-vfx colorspaces`: list the colourspaces of the OCIO config in use (to pick --colorspace values)."""

from __future__ import annotations

import argparse

from dfl_vfx.color.ocio import DEFAULT_PLATE_SPACE, WORKING_SPACE, config_source, load_config


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name,
        help="list colourspaces of the OCIO config ($OCIO, else the built-in ACES studio config)",
        description="List colourspace names usable with --colorspace, and the config they come from.",
    )
    p.add_argument("--ocio-config", metavar="PATH_OR_URI", help="OCIO config to use instead of $OCIO / built-in")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.ocio_config)
    print(f"# config: {config_source(args.ocio_config)}")
    print(f"# plate default: {DEFAULT_PLATE_SPACE}; network working space: {WORKING_SPACE}")
    for name in config.getColorSpaceNames():
        print(name)
    return 0
