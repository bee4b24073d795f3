"""Where a host node bakes its swapped frames: one folder per script, node and re-bake settings.

``<cache_root>/<script stem>/<node name>/<hash12>/<plate file name>``, e.g.
``/cache/sh010_comp_v003/DFLSwap1/3fa2c4e1b09d/plate.####.exr``. Two nodes never share a folder, so they never
write over each other's frames; changing a live setting (one a host redoes from the layers) keeps the folder,
changing a re-bake setting, the model or the plate gives a new one, and the old bake stays for going back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dfl_host.schema import Schema

HASH_LENGTH = 12
MAX_NAME = 64


def safe_name(text: str, fallback: str = "untitled") -> str:
    """``text`` as one folder name: letters, digits, ``.``, ``_`` and ``-`` only, no leading dot, at most 64
    characters (a longer name keeps a short hash of the whole so two long names stay apart)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    if not name:
        return fallback
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        name = f"{name[:MAX_NAME - 9]}_{digest}"
    return name


def bake_hash(schema: Schema, settings: Mapping[str, Any], model: str, plate: str) -> str:
    """12 hex digits naming a bake: the model, the plate and every re-bake setting (defaults filled in, values
    normalised, so 5 and 5.0 or an omitted default hash alike); live settings do not count."""
    for name in settings:
        schema.entry(name)  # an unknown name is a host bug: refuse it here rather than hash it
    rebake = {name: schema.normalised(name, settings.get(name, schema.default(name)))
              for name in schema.rebake_names}
    payload = json.dumps({"model": os.path.abspath(model), "plate": os.path.abspath(plate), "settings": rebake},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:HASH_LENGTH]


@dataclass(frozen=True)
class BakeCache:
    """A node's bake: the folder to give ``swap --out`` (or ``swap_range``) and the frames it will hold."""

    folder: str
    frames: str  # the plate's file name in the folder: the engine names output frames like the plate
    settings_hash: str


def bake_cache(cache_root: str, script: str, node: str, plate: str, model: str, settings: Mapping[str, Any],
               schema: Schema) -> BakeCache:
    """The bake folder of ``node`` in ``script`` (a script path; empty for an unsaved script) for these inputs."""
    stem = os.path.splitext(os.path.basename(script))[0] if script else ""
    digest = bake_hash(schema, settings, model, plate)
    folder = os.path.join(cache_root, safe_name(stem), safe_name(node, "node"), digest)
    return BakeCache(folder, os.path.join(folder, os.path.basename(plate)), digest)
