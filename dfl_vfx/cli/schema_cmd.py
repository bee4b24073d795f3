"""`dfl-vfx schema`: the swap settings as JSON (type, default, range, choices, units, help, live or re-bake)."""

from __future__ import annotations

import argparse
import json

EPILOG = """\
Hosts (Nuke, Blender) build their knobs and properties from this document, so a knob cannot drift from the
engine. "live": true means a host redoes the setting from the baked layers; any other change needs a re-bake.

examples:
  dfl-vfx schema > schema.json
  dfl-vfx schema --text          # a table to read
"""


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="print the swap settings' schema as JSON (for host front ends)",
                       description="Print every swap setting with its type, default, range, choices, units, help "
                                   "and whether a host can change it live.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", action="store_true", help="a readable table instead of JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dfl_vfx.schema import SWAP_SETTINGS, schema_document

    if not args.text:
        print(json.dumps(schema_document(), indent=2))
        return 0
    for s in SWAP_SETTINGS.values():
        allowed = (f"{s.range[0]}..{s.range[1]}" if s.range else
                   ", ".join(s.choices) if s.choices else s.kind)
        default = ",".join(s.default) if isinstance(s.default, tuple) else s.default
        print(f"{s.cli_flag:18} {str(default):26} {'live' if s.live else 're-bake':8} {allowed}")
    return 0
