"""The standalone `trainer` command (and `python -m trainer`): the same code as `dfl-vfx train`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dfl_vfx.cli.main import main as dfl_main


def main(argv: Sequence[str] | None = None) -> int:
    """`trainer ARGS` == `dfl-vfx train ARGS`."""
    return dfl_main(["train", *(sys.argv[1:] if argv is None else argv)])
