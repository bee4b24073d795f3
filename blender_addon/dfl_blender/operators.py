"""The DFL operators: add a DFL Swap node, bake the current frame (through the session's ``dfl-vfx serve``, the
model stays loaded), bake the frame range (modal: progress in the status bar, Esc or Cancel stops it after the
frames in flight; run from a script it blocks), submit the range to a render farm (``dfl_host.farm``; it blocks
until ``dfl-vfx farm submit`` answers), and what the render-time handler calls. Every problem the artist can fix
is an operator report of one line."""

from __future__ import annotations

import os
from typing import Any

import bpy

from dfl_host.farm import ENGINES as FARM_ENGINES

from . import bake_plan, node_group, prefs, props, shim
from .bake import Bake, BakeRequest, FarmChoice, RangeJob, submit_to_farm
from .bake_plan import BakeError

_jobs: dict[str, RangeJob] = {}  # running range bakes by node name


def active_swap_node(scene: Any) -> Any:
    """The active node when it is a DFL Swap node, else the first DFL Swap node, else None."""
    tree = shim.scene_tree(scene, create=False)
    if tree is None:
        return None
    active = tree.nodes.active
    if active is not None and node_group.is_swap_node(active):
        return active
    return next(iter(node_group.swap_nodes(scene)), None)


def _node(scene: Any, name: str) -> Any:
    node = None
    if name:
        tree = shim.scene_tree(scene, create=False)
        node = None if tree is None else tree.nodes.get(name)
    node = node if node is not None and node_group.is_swap_node(node) else active_swap_node(scene)
    if node is None:
        raise BakeError("no DFL Swap node in the compositor; add one (DFL panel > Add DFL Swap)")
    return node


def plate_image(node: Any) -> Any:
    """The image of the Image node feeding the DFL Swap node's Image input (through reroutes)."""
    socket = node.inputs[node_group.IMAGE_SOCKET]
    source = socket.links[0].from_node if socket.is_linked else None
    while source is not None and source.bl_idname == "NodeReroute":
        source = source.inputs[0].links[0].from_node if source.inputs[0].is_linked else None
    if source is None or source.bl_idname != "CompositorNodeImage" or source.image is None:
        raise BakeError(f"{node.name}: its Image input must come from an Image node reading the plate's EXR "
                        "sequence")
    if source.image.source not in ("SEQUENCE", "FILE"):
        raise BakeError(f"{node.name}: the plate {source.image.name} is a {source.image.source.lower()} image, not "
                        "an image sequence; load the plate's EXR frames (plate.1001.exr ...)")
    return source.image


def plate_pattern(node: Any) -> str:
    image = plate_image(node)
    return bake_plan.plate_pattern(bpy.path.abspath(image.filepath))


def frames_of(node: Any, scene: Any) -> list[int]:
    settings = node.node_tree.dfl
    first, last = ((scene.frame_start, scene.frame_end) if settings.use_scene_range
                   else (settings.frame_start, settings.frame_end))
    if last < first:
        raise BakeError(f"{node.name}: the frame range {first}-{last} runs backwards")
    return list(range(first, last + 1))


def request_for(node: Any, scene: Any, frames: list[int] | None = None, drawing: bool = False) -> BakeRequest:
    """What the node asks the engine for (``drawing``: from a panel's draw, which must not write preferences)."""
    settings = node.node_tree.dfl
    values = {**props.values(settings), **node_group.live_values(node)}
    for spec in props.rebake_specs():
        if spec.kind == "path" and values.get(spec.name):
            values[spec.name] = bpy.path.abspath(values[spec.name])  # // is the .blend's folder
    return BakeRequest(node=node.name, blend=bpy.data.filepath, exe=prefs.engine_path(fill=not drawing),
                       cache_root=bpy.path.abspath(settings.cache_root).rstrip(os.sep) if settings.cache_root else "",
                       plate=plate_pattern(node), model=bpy.path.abspath(settings.model).strip(),
                       faceset=bpy.path.abspath(settings.faceset).rstrip(os.sep) or None,
                       frames=frames if frames is not None else frames_of(node, scene), values=values)


def make_bake(node: Any, scene: Any, frames: list[int] | None = None) -> Bake:
    """The node's bake, checked; it keeps the node's folder while the re-bake settings are those it was baked
    with (the folder's name holds the .blend's, which may have changed since)."""
    bake = Bake(request_for(node, scene, frames))
    settings = node.node_tree.dfl
    if settings.bake_pattern and settings.bake_hash == bake.cache.settings_hash:
        bake.keep_folder(settings.bake_pattern)
    return bake


def is_stale(node: Any, scene: Any) -> bool:
    """Whether a setting that needs the network (model, plate, a re-bake setting) changed since the bake."""
    settings = node.node_tree.dfl
    if not settings.bake_hash:
        return False
    try:
        return request_for(node, scene, [scene.frame_current], drawing=True).folder_hash() != settings.bake_hash
    except (BakeError, OSError):
        return False


def finish(node: Any, scene: Any, bake: Bake) -> None:
    """Point the node at its bake for the node's whole range (main thread; frames baked later appear as they
    come), measure the baked face's size and placement, and size the live nodes."""
    settings = node.node_tree.dfl
    frames = sorted(set(bake.request.frames) | set(_node_frames(node, scene)))
    settings.bake_pattern = bake.cache.frames
    settings.bake_hash = bake.cache.settings_hash
    layers = bake_plan.layers_file(bake.cache.frames)
    node_group.point_at_bake(node, layers, frames[0], frames[-1], plate_image(node).colorspace_settings.name)
    measured = node_group.measure_bake(layers, bake.request.plate, frames)
    if measured is not None:
        settings.px_per_unit, settings.layer_offset_x, settings.layer_offset_y = measured
    node_group.sync(node, shim.api_of(scene))


def _node_frames(node: Any, scene: Any) -> list[int]:
    try:
        return frames_of(node, scene)
    except BakeError:
        return []


def bake_frame_if_missing(node: Any, scene: Any, frame: int) -> bool:
    """Bake ``frame`` unless its bake exists (render-time mode) and point the node at the bake; whether it baked.
    The first frame of a bake folder is baked in ``render_init``, so the node reads that folder from the first
    rendered frame on (Blender copies the compositor before ``render_pre``)."""
    bake = make_bake(node, scene, frames=[frame])
    baked = not os.path.exists(bake_plan.layers_file(bake_plan.frame_file(bake.cache.frames, frame)))
    if baked:
        bake.run_frame(frame)
    if node.node_tree.dfl.bake_hash != bake.cache.settings_hash:
        finish(node, scene, bake)
    return baked


class DFL_OT_add_swap_node(bpy.types.Operator):
    """Add a DFL Swap node: it reads its bake and lays the swapped face over its Image input"""

    bl_idname = "dfl.add_swap_node"
    bl_label = "Add DFL Swap"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        tree = shim.scene_tree(scene)
        api = shim.api_of(scene)
        active = tree.nodes.active
        node = node_group.add_swap_node(scene)
        if active is not None and active.bl_idname == "CompositorNodeImage":
            tree.links.new(active.outputs["Image"], node.inputs[node_group.IMAGE_SOCKET])
            node.location = (active.location.x + 300, active.location.y)
            output = shim.output_input(tree, api)
            if not output.is_linked:
                tree.links.new(node.outputs[node_group.IMAGE_SOCKET], output)
        tree.nodes.active = node
        return {"FINISHED"}


class _NodeOperator:
    node_name: bpy.props.StringProperty(name="Node", description="The DFL Swap node (empty: the active one)")


class DFL_OT_bake_frame(_NodeOperator, bpy.types.Operator):
    """Bake the current frame through the session's engine (the model stays loaded)"""

    bl_idname = "dfl.bake_frame"
    bl_label = "Bake Frame"

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        try:
            node = _node(scene, self.node_name)
            bake = make_bake(node, scene, frames=[scene.frame_current])
            result = bake.run_frame(scene.frame_current)
            finish(node, scene, bake)
        except BakeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"{node.name}: baked frame {scene.frame_current} ({result.get('faces', 0)} faces)")
        return {"FINISHED"}


class DFL_OT_bake_range(_NodeOperator, bpy.types.Operator):
    """Bake the node's frame range (Esc or Cancel stops it after the frames in flight)"""

    bl_idname = "dfl.bake_range"
    bl_label = "Bake Range"

    def _start(self, context: bpy.types.Context) -> tuple[Any, RangeJob] | None:
        scene = context.scene
        try:
            node = _node(scene, self.node_name)
            if node.name in _jobs:
                raise BakeError(f"{node.name}: a bake is already running; cancel it first")
            job = RangeJob(make_bake(node, scene)).start()
        except BakeError as exc:
            self.report({"ERROR"}, str(exc))
            return None
        _jobs[node.name] = job
        self._node_name = node.name
        return node, job

    def _end(self, context: bpy.types.Context, job: RangeJob) -> set[str]:
        _jobs.pop(self._node_name, None)
        if job.error:
            self.report({"ERROR"}, job.error)
            return {"CANCELLED"}
        scene = context.scene
        try:
            node = _node(scene, self._node_name)
            finish(node, scene, job.bake)
        except BakeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if job.cancelled:
            self.report({"WARNING"}, f"{node.name}: bake cancelled after {len(job.report.get('done') or [])} of "
                                     f"{job.total} frames (each written frame is whole)")
            return {"CANCELLED"}
        self.report({"INFO"}, f"{node.name}: baked {job.total} frames into {job.bake.cache.folder}")
        return {"FINISHED"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        started = self._start(context)
        if started is None:
            return {"CANCELLED"}
        job = started[1]
        job.wait()
        return self._end(context, job)

    def invoke(self, context: bpy.types.Context, event: Any) -> set[str]:
        started = self._start(context)
        if started is None:
            return {"CANCELLED"}
        self._job = started[1]
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.progress_begin(0, max(1, self._job.total))
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: Any) -> set[str]:
        job = self._job
        if event.type == "ESC":
            job.cancel()
        if event.type != "TIMER" and not job.finished.is_set():
            return {"PASS_THROUGH"}
        wm = context.window_manager
        wm.progress_update(job.done)
        frame = "" if job.frame is None else f", frame {job.frame}"
        context.workspace.status_text_set(f"DFL bake {self._node_name}: {job.done}/{job.total}{frame} "
                                          "(Esc to cancel)")
        if not job.finished.is_set():
            return {"RUNNING_MODAL"}
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)
        return self._end(context, job)


class DFL_OT_cancel_bake(_NodeOperator, bpy.types.Operator):
    """Stop the node's range bake after the frames in flight (frames written so far stay, each one whole)"""

    bl_idname = "dfl.cancel_bake"
    bl_label = "Cancel Bake"

    def execute(self, context: bpy.types.Context) -> set[str]:
        node = active_swap_node(context.scene) if not self.node_name else None
        job = _jobs.get(self.node_name or (node.name if node is not None else ""))
        if job is None:
            self.report({"WARNING"}, "no bake is running")
            return {"CANCELLED"}
        job.cancel()
        return {"FINISHED"}


class DFL_OT_submit_farm(_NodeOperator, bpy.types.Operator):
    """Submit the node's range to the render farm: the farm swaps into the folder this node reads"""

    bl_idname = "dfl.submit_farm"
    bl_label = "Submit to Farm"

    farm_engine: bpy.props.EnumProperty(name="Farm", items=[(name, name, "") for name in FARM_ENGINES])
    pools: bpy.props.StringProperty(name="Pools", description="Comma or space separated")
    group: bpy.props.StringProperty(name="Group")
    priority: bpy.props.IntProperty(name="Priority", default=50, min=0, max=100)
    chunk_size: bpy.props.IntProperty(name="Chunk size", default=10, min=1)
    dry_run_folder: bpy.props.StringProperty(
        name="Dry run folder", subtype="DIR_PATH",
        description="Write the job files here instead of submitting (empty: submit)")

    def invoke(self, context: bpy.types.Context, event: Any) -> set[str]:
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        choice = FarmChoice(self.farm_engine, self.pools, self.group, self.priority, self.chunk_size,
                            bpy.path.abspath(self.dry_run_folder) if self.dry_run_folder else "")
        try:
            node = _node(scene, self.node_name)
            bake = make_bake(node, scene)
            result = submit_to_farm(bake, choice)
            finish(node, scene, bake)
        except BakeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if choice.dry_run_folder:
            self.report({"INFO"}, f"{node.name}: {result.engine} job written to {choice.dry_run_folder} "
                                  f"({len(result.files)} files); shot file {result.shot_file}")
        else:
            ids = ", ".join(result.job_ids) or "run on this machine"
            self.report({"INFO"}, f"{node.name}: submitted to {result.engine}: {ids}; shot file {result.shot_file}")
        return {"FINISHED"}


def running_job(node: Any) -> RangeJob | None:
    return _jobs.get(node.name)


CLASSES = (DFL_OT_add_swap_node, DFL_OT_bake_frame, DFL_OT_bake_range, DFL_OT_cancel_bake, DFL_OT_submit_farm)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for job in list(_jobs.values()):
        job.cancel()
    _jobs.clear()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
