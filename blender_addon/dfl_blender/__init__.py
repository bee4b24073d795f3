"""DFL Swap for Blender's compositor: a node group that lays a dfl-vfx face swap over a plate, with bakes through
the engine (``dfl-vfx serve``) and a render-time mode for farm renders.

Blender's Python and the standard library only: the engine runs in its own process and environment. The host
client ``dfl_host`` ships inside the add-on (``vendor/``, put there by ``make blender-addon`` and
``dfl-vfx host install blender``); a source checkout finds it on ``sys.path``. The modules that need bpy load in
:func:`register`, so the bpy-free helpers (``bake_plan``, ``shim``'s decisions) import anywhere (with ``dfl_host``,
whose ``exr_header`` reads the baked frames' headers).
"""

from __future__ import annotations

import os
import sys

bl_info = {
    "name": "DFL Swap",
    "author": "dfl_vfx",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "Compositor > Sidebar > DFL",
    "description": "Face replacement in the compositor, baked by the dfl-vfx engine",
    "category": "Compositing",
}

_VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if os.path.isdir(_VENDOR) and _VENDOR not in sys.path:
    sys.path.insert(0, _VENDOR)

_settings_class: type | None = None


def register() -> None:
    import bpy

    from . import handlers, operators, panel, prefs, props

    global _settings_class
    bpy.utils.register_class(prefs.DflPreferences)
    _settings_class = props.settings_class()
    bpy.utils.register_class(_settings_class)
    bpy.types.NodeTree.dfl = bpy.props.PointerProperty(type=_settings_class)
    operators.register()
    panel.register()
    handlers.register()


def unregister() -> None:
    import bpy

    from . import bake, handlers, operators, panel, prefs

    global _settings_class
    handlers.unregister()
    panel.unregister()
    operators.unregister()
    bake.close_clients()
    del bpy.types.NodeTree.dfl
    if _settings_class is not None:
        bpy.utils.unregister_class(_settings_class)
        _settings_class = None
    bpy.utils.unregister_class(prefs.DflPreferences)
