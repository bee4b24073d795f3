"""Render-time baking and sizing. Blender copies the compositor for each frame before ``render_pre``, so
``render_init`` (once per render, before the first copy) sizes the live nodes and, in render-time mode, bakes the
first frame when missing so the node reads its bake folder; ``render_pre`` bakes each later frame before the
compositor reads its file (``frame_change_pre`` fires only once in an animation render);
``depsgraph_update_post`` resizes when the artist edits a live setting. A problem is one line on stderr, never a
traceback."""

from __future__ import annotations

import sys
from typing import Any

import bpy

from . import node_group, operators, shim
from .bake_plan import BakeError


def _report(message: str) -> None:
    print(f"DFL Swap: {message}", file=sys.stderr, flush=True)


def _bake_missing(scene: Any, frame: int) -> None:
    for node in node_group.swap_nodes(scene):
        if not node.node_tree.dfl.render_bake:
            continue
        try:
            operators.bake_frame_if_missing(node, scene, frame)
        except BakeError as exc:
            _report(str(exc))


@bpy.app.handlers.persistent
def render_init(scene: Any, *_: Any) -> None:
    # which frames follow is unknown here (an animation starts at frame_start, a still renders frame_current, and
    # frame_current still holds the artist's frame): any frame of the scene's range points the node at its folder
    inside = scene.frame_start <= scene.frame_current <= scene.frame_end
    _bake_missing(scene, scene.frame_current if inside else scene.frame_start)
    sync_all(scene)


@bpy.app.handlers.persistent
def render_pre(scene: Any, *_: Any) -> None:
    _bake_missing(scene, scene.frame_current)


@bpy.app.handlers.persistent
def sync_all(scene: Any, *_: Any) -> None:
    api = shim.api_of(scene)
    for node in node_group.swap_nodes(scene):
        node_group.sync(node, api)


HANDLERS = ((bpy.app.handlers.render_init, render_init), (bpy.app.handlers.render_pre, render_pre),
            (bpy.app.handlers.depsgraph_update_post, sync_all))


def register() -> None:
    for handlers, function in HANDLERS:
        if function not in handlers:
            handlers.append(function)


def unregister() -> None:
    for handlers, function in HANDLERS:
        if function in handlers:
            handlers.remove(function)
