"""Finding the engine executable: an explicit path, else ``$DFL_VFX_EXE``, else ``dfl-vfx`` on PATH."""

from __future__ import annotations

import os
import shutil

from dfl_host.errors import EngineNotFound

ENGINE_ENV = "DFL_VFX_EXE"
ENGINE_NAME = "dfl-vfx"


def find_engine(exe: str | None = None) -> str:
    """The path of the ``dfl-vfx`` to run (checked to be an executable file)."""
    given = exe or os.environ.get(ENGINE_ENV)
    source = "the engine path" if exe else f"${ENGINE_ENV}"
    if given:
        found = shutil.which(given) if os.sep not in given else (given if _runnable(given) else None)
        if found is None:
            raise EngineNotFound(f"{source} {given} is not an executable file; point it at the engine's dfl-vfx "
                                 "(e.g. /opt/dfl_vfx/.venv/bin/dfl-vfx)")
        return os.path.abspath(found)
    found = shutil.which(ENGINE_NAME)
    if found is None:
        raise EngineNotFound(f"{ENGINE_NAME} not found: set {ENGINE_ENV} to the engine's dfl-vfx "
                             "(e.g. /opt/dfl_vfx/.venv/bin/dfl-vfx) or put it on PATH")
    return os.path.abspath(found)


def _runnable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)
