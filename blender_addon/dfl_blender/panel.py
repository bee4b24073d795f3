"""The DFL sidebar panel of the compositor: the active DFL Swap node's model, plate, frame range, re-bake
settings (colour transfer and mask first), live settings, bake buttons and the stale warning."""

from __future__ import annotations

import bpy

from . import node_group, operators, prefs, props

FIRST_SETTINGS = ("color_transfer", "mask_mode")  # shown at the top; the other re-bake settings follow in a box


class DFL_PT_swap(bpy.types.Panel):
    bl_label = "DFL Swap"
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = "DFL"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        space = context.space_data
        return space is not None and getattr(space, "tree_type", "") == "CompositorNodeTree"

    def draw(self, context: bpy.types.Context) -> None:
        layout, scene = self.layout, context.scene
        node = operators.active_swap_node(scene)
        layout.operator("dfl.add_swap_node", icon="ADD")
        if node is None:
            layout.label(text="Select an Image node with the plate, then add a DFL Swap node")
            return
        if not prefs.engine_path(fill=False):
            layout.label(text="Engine: set it in the add-on's preferences", icon="ERROR")
        settings = node.node_tree.dfl
        layout.label(text=node.name, icon="NODE")
        layout.prop(settings, "model")
        try:
            layout.label(text=f"Plate: {operators.plate_pattern(node)}", icon="IMAGE_DATA")
        except operators.BakeError as exc:
            layout.label(text=str(exc), icon="ERROR")
        layout.prop(settings, "faceset")
        layout.prop(settings, "cache_root")
        row = layout.row(align=True)
        row.prop(settings, "use_scene_range")
        sub = row.row(align=True)
        sub.enabled = not settings.use_scene_range
        sub.prop(settings, "frame_start")
        sub.prop(settings, "frame_end")
        for name in FIRST_SETTINGS:
            layout.prop(settings, name)
        box = layout.box()
        box.label(text="More re-bake settings")
        for spec in props.rebake_specs():
            if spec.name not in FIRST_SETTINGS:
                box.prop(settings, spec.name)
        live = layout.box()
        live.label(text="Live (no re-bake)")
        for spec in node_group.live_specs():
            socket = node.inputs.get(spec.label)
            if socket is not None and not socket.is_linked:
                live.prop(socket, "default_value", text=spec.label)
        layout.prop(settings, "render_bake")
        if operators.is_stale(node, scene):
            layout.label(text="Stale: a re-bake setting changed since the bake", icon="ERROR")
        job = operators.running_job(node)
        row = layout.row(align=True)
        if job is None:
            row.operator("dfl.bake_frame").node_name = node.name
            row.operator("dfl.bake_range").node_name = node.name
        else:
            row.label(text=f"Baking {job.done}/{job.total}")
            row.operator("dfl.cancel_bake", icon="CANCEL").node_name = node.name
        layout.operator("dfl.submit_farm", icon="EXPORT").node_name = node.name
        if settings.bake_pattern:
            layout.label(text=f"Bake: {settings.bake_pattern}")


def register() -> None:
    bpy.utils.register_class(DFL_PT_swap)


def unregister() -> None:
    bpy.utils.unregister_class(DFL_PT_swap)
