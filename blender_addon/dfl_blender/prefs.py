"""The add-on's preferences: the engine's path. ``dfl-vfx host install blender`` records it in
``dfl_blender_config.json`` beside the add-on, which fills the preference while it is empty."""

from __future__ import annotations

import json
import os

import bpy

CONFIG_NAME = "dfl_blender_config.json"
ADDON_ROOT = os.path.dirname(os.path.abspath(__file__))


def installed_engine(root: str = ADDON_ROOT) -> str:
    """The engine path the installer recorded, or ""."""
    try:
        with open(os.path.join(root, CONFIG_NAME), encoding="utf-8") as handle:
            value = json.load(handle).get("engine")
    except (OSError, ValueError, AttributeError):
        return ""
    return str(value or "")


class DflPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    engine: bpy.props.StringProperty(
        name="Engine", subtype="FILE_PATH",
        description="The engine's dfl-vfx executable (e.g. /opt/dfl_vfx/.venv/bin/dfl-vfx); empty: "
                    "$DFL_VFX_EXE, then dfl-vfx on PATH")

    def draw(self, context: bpy.types.Context) -> None:
        self.layout.prop(self, "engine")


def preferences() -> DflPreferences | None:
    addon = bpy.context.preferences.addons.get(__package__)
    return None if addon is None else addon.preferences


def engine_path(fill: bool = True) -> str | None:
    """The engine to run: the preference, else the installed one (copied into the preference when ``fill``; a
    panel's draw never writes), else None (dfl_host then tries $DFL_VFX_EXE and PATH)."""
    prefs = preferences()
    if prefs is not None and prefs.engine.strip():
        return bpy.path.abspath(prefs.engine.strip())
    installed = installed_engine()
    if installed and prefs is not None and fill:
        prefs.engine = installed
    return installed or None
