"""The farm engines, by the name ``dfl-vfx farm submit --engine`` takes: one module each under ``dfl_vfx.farm``,
with ``check(job)`` (refuse what the engine cannot express), ``write(job, out_dir)`` (the files it would submit)
and ``submit(job, out_dir)`` (write, then submit; the exit status). Modules load on first use, so the CLI's
parser stays cheap."""

from __future__ import annotations

import importlib
from types import ModuleType

ENGINES: dict[str, str] = {
    "openjd": "dfl_vfx.farm.openjd",
    "deadline-cloud": "dfl_vfx.farm.deadline_cloud",
    "opencue": "dfl_vfx.farm.opencue",
    "deadline10": "dfl_vfx.farm.deadline10",
}


def engine(name: str) -> ModuleType:
    """The backend module of engine ``name`` (one of :data:`ENGINES`)."""
    return importlib.import_module(ENGINES[name])
