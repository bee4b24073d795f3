"""The temporary EXR sequences a bake renders a non-Read input to: ``CACHE/input_<node>_<random>/input.####.exr``.

Each render goes into a fresh folder named after the node. Before it, the node's earlier input folders (superseded:
the engine has read them) and any input folder older than :data:`MAX_AGE_S` (another node's, left by a crash) are
removed; a render that fails or is cancelled removes its own folder, so no half-written frame stays under a real
name. Standard library only (Nuke's Python).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable

PREFIX = "input_"
MAX_AGE_S = 24 * 3600.0
PATTERN_NAME = "input.####.exr"


def node_prefix(node_name: str) -> str:
    """``input_<node>_``: the node's folders (its name made safe for a folder, ending in ``_``)."""
    return f"{PREFIX}{re.sub(r'[^A-Za-z0-9.-]+', '-', node_name) or 'node'}_"


def prune(cache_root: str, node_name: str, keep: Iterable[str] = (), now: float | None = None,
          max_age_s: float = MAX_AGE_S) -> list[str]:
    """Remove the node's earlier input folders and every input folder older than ``max_age_s`` (by the newest
    modification inside); ``keep`` names folders in use. Returns the removed folders."""
    now = time.time() if now is None else now
    mine = node_prefix(node_name)
    kept = {os.path.abspath(path) for path in keep}
    removed: list[str] = []
    try:
        names = sorted(os.listdir(cache_root))
    except OSError:
        return removed
    for name in names:
        path = os.path.join(cache_root, name)
        if not name.startswith(PREFIX) or not os.path.isdir(path) or os.path.abspath(path) in kept:
            continue
        if name.startswith(mine) or now - _newest(path) > max_age_s:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _newest(folder: str) -> float:
    stamps = [os.path.getmtime(folder)]
    for entry in os.scandir(folder):
        try:
            stamps.append(entry.stat().st_mtime)
        except OSError:
            continue
    return max(stamps)


def render(cache_root: str, node_name: str, run: Callable[[str], None]) -> str:
    """A fresh input folder for the node, filled by ``run(pattern)``; removed again when ``run`` raises."""
    prune(cache_root, node_name)
    folder = tempfile.mkdtemp(prefix=node_prefix(node_name), dir=cache_root)
    pattern = os.path.join(folder, PATTERN_NAME)
    try:
        run(pattern)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return pattern
