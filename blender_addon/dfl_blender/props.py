"""The DFL Swap node's settings, kept on its group tree (``node.node_tree.dfl``): the model and plate side of the
bake, the frame range, the render-time mode, the re-bake settings generated from the engine's schema, and what
the last bake was (its folder and hash, for the stale warning)."""

from __future__ import annotations

from typing import Any

import bpy

from . import bake_plan


def _schema_property(spec: bake_plan.SettingSpec) -> Any:
    common = {"name": spec.label, "description": spec.description}
    if spec.kind == "enum":
        items = [(item, item, "") for item in spec.items]
        return bpy.props.EnumProperty(items=items, default=spec.default, **common)
    if spec.kind == "int":
        limits = {k: int(v) for k, v in (("min", spec.minimum), ("max", spec.maximum)) if v is not None}
        return bpy.props.IntProperty(default=int(spec.default), **limits, **common)
    if spec.kind == "float":
        limits = {k: float(v) for k, v in (("min", spec.minimum), ("max", spec.maximum)) if v is not None}
        return bpy.props.FloatProperty(default=float(spec.default), **limits, **common)
    if spec.kind == "path":
        return bpy.props.StringProperty(default=spec.default, subtype="FILE_PATH", **common)
    return bpy.props.StringProperty(default=spec.default, **common)


def rebake_specs() -> list[bake_plan.SettingSpec]:
    return [spec for spec in bake_plan.setting_specs(bake_plan.load_schema()) if not spec.live]


def settings_class() -> type:
    """The PropertyGroup class: fixed fields plus one property per re-bake setting of the schema."""
    annotations: dict[str, Any] = {
        "model": bpy.props.StringProperty(name="Model", subtype="FILE_PATH",
                                          description="The trained dfl-vfx model: an exported .onnx, a .dfm or "
                                                      "a model folder"),
        "faceset": bpy.props.StringProperty(name="Faceset", subtype="DIR_PATH",
                                            description="Optional destination faceset of the plate (smoothed "
                                                        "landmarks); empty: faces are detected per frame"),
        "cache_root": bpy.props.StringProperty(name="Cache folder", subtype="DIR_PATH", default="//dfl_cache",
                                               description="Where bakes are written (// is the .blend's folder)"),
        "use_scene_range": bpy.props.BoolProperty(name="Scene range", default=True,
                                                  description="Bake the scene's frame range"),
        "frame_start": bpy.props.IntProperty(name="Start", default=1001),
        "frame_end": bpy.props.IntProperty(name="End", default=1100),
        "render_bake": bpy.props.BoolProperty(
            name="Bake at render time", default=False,
            description="Before each rendered frame, bake it if its bake is missing (renders on a farm node too)"),
        "bake_pattern": bpy.props.StringProperty(name="Baked frames", options={"HIDDEN"}),
        "bake_hash": bpy.props.StringProperty(options={"HIDDEN"}),
        "px_per_unit": bpy.props.FloatProperty(name="Face unit", default=1.0, options={"HIDDEN"},
                                               description="Plate pixels per DeepFaceLab erode/blur unit of the "
                                                           "baked face (from the bake)"),
        "layer_offset_x": bpy.props.FloatProperty(options={"HIDDEN"}),
        "layer_offset_y": bpy.props.FloatProperty(options={"HIDDEN"}),
    }
    for spec in rebake_specs():
        annotations[spec.name] = _schema_property(spec)
    return type("DflSwapSettings", (bpy.types.PropertyGroup,), {"__annotations__": annotations})


def values(settings: Any) -> dict[str, Any]:
    """The re-bake settings' values by schema name."""
    return {spec.name: getattr(settings, spec.name) for spec in rebake_specs()}
