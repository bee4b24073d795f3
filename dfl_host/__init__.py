"""dfl_host: the standard-library client every host (Nuke, Blender, farm tools) uses to drive the dfl_vfx engine.

Python 3.9+, standard library only: it never imports dfl_vfx, numpy or torch, and it is copied as is into the
Nuke plugin folder and the Blender add-on. It owns finding and starting the engine (:mod:`dfl_host.locate`,
:class:`~dfl_host.client.EngineClient`), the ``dfl-vfx serve`` protocol (docs/dev/host-protocol.md), engine errors as
exceptions (:mod:`dfl_host.errors`), the settings schema (:mod:`dfl_host.schema`), argument lists for engine and farm
commands (:mod:`dfl_host.commands`), the naming of bake caches (:mod:`dfl_host.cache`) and reading a baked frame's
EXR header (:mod:`dfl_host.exr_header`).
"""

from dfl_host.cache import BakeCache, bake_cache, bake_hash, safe_name
from dfl_host.client import Call, EngineClient, Progress
from dfl_host.commands import export_command, extract_command, swap_command, train_command
from dfl_host.errors import (
    EngineDied,
    EngineError,
    EngineNotFound,
    EngineTimeout,
    OutputRefused,
    ProtocolError,
    RequestCancelled,
    RequestFailed,
    SettingError,
    Unauthorized,
)
from dfl_host.locate import find_engine
from dfl_host.schema import Schema, read_schema

__all__ = [
    "BakeCache", "Call", "EngineClient", "EngineDied", "EngineError", "EngineNotFound", "EngineTimeout",
    "OutputRefused", "Progress", "ProtocolError", "RequestCancelled", "RequestFailed", "Schema", "SettingError",
    "Unauthorized", "bake_cache", "bake_hash", "export_command", "extract_command", "find_engine", "read_schema",
    "safe_name", "swap_command", "train_command",
]
